#!/usr/bin/env bash
# The CPU instructions a request costs, counted by valgrind's callgrind: `crv serve` (with
# `--wal DIR --fsync everysec` for the events scenarios) and bare hyper, each under callgrind,
# under the same crv-loadtest run (50 connections, from the other core). Prints the user-space
# instructions of every thread of the server per answered request, and crv's over bare
# hyper's. The kernel's work (the sockets, the log's writes) is not counted.
#
# Why: on a shared virtual machine a throughput moves by a fifth from one minute to the next
# (loadtest/README.md), which hides a change worth a few percent; an instruction count is the
# same from run to run to a fraction of a percent (it moves only with the size of the writer's
# groups, which follows the timing). It is a proxy: a cache miss costs no instruction, so
# memory-bound work (the start-up's replay) is measured by time, not here.
#
# valgrind cannot run AVX-512 code, so both servers are built for x86-64-v3 (AVX2) into
# target/callgrind; the results are the same, only the SIMD kernels differ (and the single-
# request paths measured here use none). Under callgrind a server runs ~50x slower: the
# figures are per request, not per second.
#
# Settings (environment): SCENARIO (events; or uniform, zipf, events-batch: any crv-loadtest
# scenario), DURATION (8 s counted, after WARMUP 2 s), CONNECTIONS (50), CUSTOMERS (1000000),
# SERVER_CPU (0), CLIENT_CPU (1), PORT (18190), BARE_PORT (18191), DATA (target/loadtest-data).
set -euo pipefail

SCRIPT=instructions.sh
SCENARIO=${SCENARIO:-events}
PORT=${PORT:-18190}
BARE_PORT=${BARE_PORT:-18191}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-2}
export CRV_TOKEN=${CRV_TOKEN:-loadtest-$RANDOM$RANDOM}
for tool in taskset valgrind callgrind_control callgrind_annotate jq; do
  command -v "$tool" >/dev/null || { echo "instructions.sh: $tool is missing (apt-get install util-linux valgrind jq)" >&2; exit 2; }
done
. "$(dirname "$0")/common.sh"

echo "== building for x86-64-v3 (valgrind runs no AVX-512) into target/callgrind"
RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release --quiet --target-dir "$ROOT/target/callgrind" \
  -p crv -p crv-loadtest --bin crv --bin bare-hyper
COUNTED=$ROOT/target/callgrind/release

# crv-loadtest for $2 seconds against port $1; prints its summary (JSON).
load() {
  "${ON_CLIENT_CPU[@]}" "$LOADTEST" --addr "$HOST:$1" --store "$STORE" --scenario "$SCENARIO" \
    --connections "$CONNECTIONS" --warmup 0 --duration "$2" --check-every 0 --json \
    2>> "$DATA/callgrind-load.log" | tail -n1
}

# GET $2 from port $1 and waits for the whole answer (HTTP/1.0: the server closes after it).
fetch() {
  exec 3<>"/dev/tcp/$HOST/$1"
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$HOST" >&3
  cat <&3 > /dev/null
  exec 3<&-
}

# Runs the server command after $1 (its port) under callgrind, counting only while
# crv-loadtest runs DURATION seconds (after WARMUP); sets IR (instructions) and REQUESTS.
count() {
  local port=$1 out="$DATA/callgrind.$1.out" pid
  shift
  rm -f "$out"
  "${ON_SERVER_CPU[@]}" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$@" 2> "$DATA/callgrind.$port.log" &
  pid=$!
  started+=($pid)
  wait_healthy "$port" 600 || { tail -5 "$DATA/callgrind.$port.log" >&2; exit 1; }
  # crv computes the dashboard's summary in the background once it serves (a sort of every
  # customer: seconds under callgrind); its first GET waits for it, so none of it is counted.
  fetch "$port" /v1/summary
  load "$port" "$WARMUP" > /dev/null
  callgrind_control -i on "$pid" > /dev/null 2>&1
  REQUESTS=$(load "$port" "$DURATION" | jq '.requests')
  callgrind_control -i off "$pid" > /dev/null 2>&1
  stop_started
  IR=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
}

case $SCENARIO in
  events*) rm -rf "$DATA/callgrind-wal" && cp "$STORE" "$DATA/callgrind.crv"
           serve=("$COUNTED/crv" serve "$DATA/callgrind.crv" --addr "$HOST:$PORT" --wal "$DATA/callgrind-wal" --fsync everysec) ;;
  *)       serve=("$COUNTED/crv" serve "$STORE" --addr "$HOST:$PORT") ;;
esac
echo "== crv serve under callgrind, $SCENARIO"
count "$PORT" "${serve[@]}"
crv_ir=$IR crv_requests=$REQUESTS
echo "== bare-hyper under callgrind, $SCENARIO"
count "$BARE_PORT" "$COUNTED/bare-hyper" --addr "$HOST:$BARE_PORT"
bare_ir=$IR bare_requests=$REQUESTS

crv_per=$((crv_ir / crv_requests))
bare_per=$((bare_ir / bare_requests))
printf '\n%-12s %14s %10s %14s\n' server instructions requests "per request"
printf '%-12s %14s %10s %14s\n' crv "$crv_ir" "$crv_requests" "$crv_per"
printf '%-12s %14s %10s %14s\n' bare-hyper "$bare_ir" "$bare_requests" "$bare_per"
echo "crv's own work: $((crv_per - bare_per)) instructions a request ($SCENARIO)"
