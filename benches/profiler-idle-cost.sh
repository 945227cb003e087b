#!/usr/bin/env bash
# The profiler's cost when nobody profiles: http-server built without the
# `profiling` feature (copied to http-server-plain) against http-server
# built with it (pprof-rs compiled in, jemalloc with its sampling heap
# profiler as the allocator), interleaved rounds of wrk.
#   bash benches/profiler-idle-cost.sh [--rounds N] [--duration SECS]
# Only orderly-benches is built each time, so no other crate of the
# workspace turns the feature on behind its back.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p orderly-benches --bins
cp target/release/http-server target/release/http-server-plain
cargo build -q --release -p orderly-benches --bins --features profiling
target/release/http-harness --only profiler "$@"
