#!/usr/bin/env bash
# What building only the components an app uses buys. Builds the HTTP bench
# server (benches/src/bin/http-server.rs) in a throwaway crate outside the
# workspace, with orderly-components' `http` and `admin` features only, and
# runs http-harness against it. Inside the workspace, features unify and every
# standard component is compiled into the bench server.
#
# Needs `cargo build --release -p orderly-benches --bin http-harness` first.
# Arguments go to the harness (default: --runs 10 --only start). Cargo's own
# environment applies, e.g. CARGO_PROFILE_RELEASE_OPT_LEVEL=s.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/trimmed
# A fixed place for the generated crate, so a second run rebuilds only what changed.
D=$OUT/crate
mkdir -p "$D/src"
{
  cat <<EOF
[package]
name = "http-server"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
orderly = { path = "$ROOT/framework" }
orderly-components = { path = "$ROOT/components", default-features = false, features = ["http", "admin"] }
EOF
  # actix-web and tokio as the workspace declares them.
  grep -E '^(actix-web|tokio) = ' Cargo.toml
  echo
  # The workspace's release profile, so only the features differ.
  sed -n '/^\[profile\.release\]$/,/^$/p' Cargo.toml
} >"$D/Cargo.toml"
[ "$(grep -cE '^(actix-web|tokio|lto) = ' "$D/Cargo.toml")" -eq 3 ] || {
  echo "trimmed-features: could not read actix-web, tokio and [profile.release] from Cargo.toml" >&2
  exit 1
}
# Same versions as the workspace.
cp Cargo.lock "$D/"
# The bench config disables the worker and database components; a build
# without them rejects the names as unknown, so drop those two tables.
sed '/^\[components\.\(workers\|database\)\]$/,+1d' benches/src/bin/http-server.rs >"$D/src/main.rs"
if grep -q 'components\.\(workers\|database\)' "$D/src/main.rs"; then
  echo "trimmed-features: could not remove the workers/database config from http-server.rs" >&2
  exit 1
fi
CARGO_TARGET_DIR=$OUT cargo build --release --manifest-path "$D/Cargo.toml"
cp target/release/http-harness "$OUT/release/"
# The trimmed binary's size, beside the workspace build's if there is one.
ls -l "$OUT/release/http-server"
if [ -e target/release/http-server ]; then ls -l target/release/http-server; fi
cd /tmp
if [ $# -eq 0 ]; then set -- --runs 10 --only start; fi
"$OUT/release/http-harness" "$@"
