#!/usr/bin/env bash
# Profiles example-app's cache-hit read under load: perf samples with call
# graphs for 5 s while wrk -t1 -c32 reads one order. Needs a release build
# (cargo build --release -p example-app), wrk and linux-perf; the app starts
# its own dev database (the release binary is run with --profile dev). Output: /tmp/example-app-read.perf, and the top
# symbols on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
out=/tmp/example-app-read.perf
KEY="Authorization: Bearer dev-key-not-for-production"
APP__HTTP__BIND=127.0.0.1:18080 APP__ADMIN__BIND=127.0.0.1:19090 APP__HTTP__WORKERS=1 APP__LOG__FORMAT=json \
  target/release/example-app --profile dev >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 300); do curl -sf -o /dev/null http://127.0.0.1:19090/readyz && break; sleep 0.1; done
id=$(curl -s -X POST http://127.0.0.1:18080/api/v1/orders -H "$KEY" -H 'Content-Type: application/json' \
  -d '{"customer":"ada","items":[{"sku":"A-1","quantity":2,"unit_price_cents":150}]}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
sleep 1 # its confirmation runs; the next read caches the final state
curl -s -o /dev/null "http://127.0.0.1:18080/api/v1/orders/$id" -H "$KEY"
timeout 20 wrk -t1 -c32 -d8s -H "$KEY" "http://127.0.0.1:18080/api/v1/orders/$id" &
sleep 1
perf record -F 2000 -g -p "$pid" -o "$out" -- sleep 5 2>/dev/null
wait %2 || true
perf report -i "$out" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -5
perf report -i "$out" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -15
