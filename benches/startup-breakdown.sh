#!/usr/bin/env bash
# Where example-app's startup time goes: `example-app analyze` (issue #24)
# runs the release binary's real components 6 times against a throwaway
# Postgres (a first run migrates it and is not counted) and prints blame
# (each component's start and ready, medians and worst) and the critical
# chain. Needs `cargo build --release -p example-app` and the postgresql
# binaries; run as root (Postgres runs as `postgres`).
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
D=$(mktemp -d)
chown postgres: "$D"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'runuser -u postgres -- "$B/pg_ctl" -D "$D/data" -m fast -w -s stop || true; rm -rf "$D"' EXIT
runuser -u postgres -- "$B/initdb" -D "$D/data" -U postgres -A trust --no-sync >/dev/null
runuser -u postgres -- "$B/pg_ctl" -D "$D/data" -l "$D/log" -w -s \
  -o "-h 127.0.0.1 -p $PORT -k $D -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start
export APP__DATABASE__URL="postgres://postgres@127.0.0.1:$PORT/postgres" APP__HTTP__BIND=127.0.0.1:0 \
  APP__ADMIN__BIND=127.0.0.1:0 APP__API__KEY=bench-key-0123456789abcdef
# A throwaway database: not production, whatever the release build's profile says.
target/release/example-app analyze --yes --runs 1 blame >/dev/null
target/release/example-app analyze --yes --runs 5 blame
target/release/example-app analyze --yes --runs 5 critical-chain
