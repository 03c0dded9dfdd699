#!/usr/bin/env bash
# The start-up of `crv serve --wal` replaying an event log over a store, on this machine:
# EVENTS logged events (`crv-eventlog`: purchases 85%, contacts 8%, responses 4%, margin
# changes 3%, customers uniform) over a CUSTOMERS-customer store, the server started ROUNDS
# times, each on fresh copies of the store and the log (a server opens the log's last segment
# to append to it), both read into the page cache first. A start-up is the wall time from the
# server's start to its `listening` line; beside it, the `replay_ms` the server logs, its CPU
# time (user and system, all threads) and its anonymous memory, read from /proc when it
# listens. A first start-up is run and not counted. With BASELINE=/path/to/another/crv, the
# two binaries alternate, the order swapped each round (a shared machine's speed drifts from
# one minute to the next), and the summary gives both medians and their ratio. Nothing sends
# requests: no client runs.
#
# Settings (environment): CUSTOMERS (10000000), EVENTS (10000000), ROUNDS (5), BASELINE
# (none), PORT (18095), DATA (target/loadtest-data).
set -euo pipefail
SCRIPT=startup.sh
CUSTOMERS=${CUSTOMERS:-10000000}
EVENTS=${EVENTS:-10000000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-18095}
BASELINE=${BASELINE:-}
. "$(dirname "$0")/common.sh"

LOG=$DATA/events-$EVENTS-over-$CUSTOMERS.wal
if [ ! -d "$LOG" ]; then
  echo "== writing $EVENTS events into $LOG"
  rm -rf "$LOG.partial"
  "$ROOT/target/release/crv-eventlog" --store "$STORE" --wal "$LOG.partial" --events "$EVENTS"
  mv "$LOG.partial" "$LOG"
fi
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE" ]; then
  echo "$SCRIPT: BASELINE=$BASELINE is not an executable" >&2
  exit 2
fi
TICKS=$(getconf CLK_TCK)
RUN=$DATA/startup-run

# Starts crv binary $1 on fresh copies of the store and the log and stops it once it listens;
# sets RESULT to "wall_ms replay_ms user_s system_s anon_MB".
start_once() {
  local bin=$1 start end pid cpu anon replay
  rm -rf "$RUN" && mkdir -p "$RUN"
  cp "$STORE" "$RUN/customers.crv"
  cp -r "$LOG" "$RUN/wal"
  cat "$RUN/customers.crv" "$RUN"/wal/* > /dev/null
  start=$(date +%s%N)
  "$bin" serve "$RUN/customers.crv" --wal "$RUN/wal" --addr "$HOST:$PORT" > "$RUN/log" 2>&1 &
  pid=$!
  started=("$pid")
  until grep -q ' listening ' "$RUN/log"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$SCRIPT: $bin stopped before listening:" >&2
      cat "$RUN/log" >&2
      exit 1
    fi
    sleep 0.01
  done
  end=$(date +%s%N)
  # utime and stime (fields 14 and 15 of /proc/PID/stat, after the parenthesised name).
  cpu=$(sed 's/.*) //' "/proc/$pid/stat" | awk -v t="$TICKS" '{ printf "%.2f %.2f", $12 / t, $13 / t }')
  anon=$(awk '/^RssAnon:/ { printf "%d", $2 / 1024 }' "/proc/$pid/status")
  kill -INT "$pid"
  wait "$pid" || true
  started=()
  replay=$(grep -o 'replay_ms=[0-9.]*' "$RUN/log" | head -n1 | cut -d= -f2)
  RESULT="$(((end - start) / 1000000)) ${replay%.*} $cpu $anon"
}

# The median of the numbers on standard input.
median() {
  sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

binaries=("$CRV")
[ -n "$BASELINE" ] && binaries+=("$BASELINE")
echo "== $ROUNDS start-ups replaying $EVENTS events over $CUSTOMERS customers (load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-6s %-10s %8s %10s %7s %9s %8s\n' round binary "wall ms" "replay ms" "user s" "system s" "anon MB"
# The first start-up of a sitting is the slowest by 1-5 s on the development VM, whichever
# binary runs it (the host backing the guest's freed memory again): one is run and not counted.
start_once "$CRV"
echo "(not counted) $RESULT"
declare -A walls replays
for round in $(seq "$ROUNDS"); do
  order=("${binaries[@]}")
  if [ $((round % 2)) = 0 ] && [ -n "$BASELINE" ]; then order=("$BASELINE" "$CRV"); fi
  for bin in "${order[@]}"; do
    name=crv
    [ "$bin" = "$BASELINE" ] && name=baseline
    start_once "$bin"
    read -r wall replay user system anon <<< "$RESULT"
    printf '%-6s %-10s %8s %10s %7s %9s %8s\n' "$round" "$name" "$wall" "$replay" "$user" "$system" "$anon"
    walls[$name]+="$wall "
    replays[$name]+="$replay "
  done
done
rm -rf "$RUN"

echo "== summary (medians of $ROUNDS; load $(cut -d' ' -f1 /proc/loadavg) at the end)"
for name in crv baseline; do
  [ -n "${walls[$name]:-}" ] || continue
  wall=$(tr ' ' '\n' <<< "${walls[$name]}" | grep . | median)
  replay=$(tr ' ' '\n' <<< "${replays[$name]}" | grep . | median)
  printf '%-10s start-up %s ms, replay %s ms\n' "$name" "$wall" "$replay"
done
if [ -n "$BASELINE" ]; then
  crv=$(tr ' ' '\n' <<< "${walls[crv]}" | grep . | median)
  base=$(tr ' ' '\n' <<< "${walls[baseline]}" | grep . | median)
  awk -v c="$crv" -v b="$base" 'BEGIN { printf "ratio baseline / crv: %.2fx\n", b / c }'
fi
