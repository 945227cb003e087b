#!/usr/bin/env bash
# Where example-app's startup time goes: runs the release binary 6 times
# against a throwaway Postgres (the first run migrates and is not counted)
# and prints each component's median start and ready time from its own
# lifecycle events (elapsed_ms). Needs `cargo build --release -p example-app`
# and the postgresql binaries; run as root (Postgres runs as `postgres`).
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
for i in 0 1 2 3 4 5; do
  APP__DATABASE__URL="postgres://postgres@127.0.0.1:$PORT/postgres" APP__HTTP__BIND=127.0.0.1:0 \
    APP__ADMIN__BIND=127.0.0.1:0 APP__LOG__FORMAT=json APP__API__KEY=bench-key-0123456789abcdef \
    target/release/example-app >"$D/run$i.log" 2>&1 &
  pid=$!
  for _ in $(seq 400); do grep -q '"msg":"serving"' "$D/run$i.log" && break; sleep 0.05; done
  kill -TERM "$pid"
  wait "$pid"
done
python3 - "$D" <<'PY'
import json, statistics, sys
runs = []
for i in range(1, 6):
    events = [json.loads(l) for l in open(f"{sys.argv[1]}/run{i}.log") if l.startswith("{")]
    of = lambda kind: {e["component"]: e.get("elapsed_ms", 0.0) for e in events if e.get("event") == kind}
    runs.append((of("started"), of("ready")))
print(f"{'component':10} {'start ms':>9} {'ready ms':>9}   (medians of 5 runs)")
for c in sorted(runs[0][0]):
    start = statistics.median(r[0].get(c, 0.0) for r in runs)
    ready = statistics.median(r[1].get(c, 0.0) for r in runs)
    print(f"{c:10} {start:9.2f} {ready:9.2f}")
PY
