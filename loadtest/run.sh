#!/usr/bin/env bash
# crv's load test end to end, on this machine only (127.0.0.1): builds crv and the load test in
# release, generates and imports a store of $CUSTOMERS customers (once, reused), serves it with
# `crv serve` pinned to one core and runs every scenario with the generator pinned to another;
# then the same lookups against bare hyper, and wrk and redis-benchmark when installed. Prints a
# summary table; every process it started is stopped on exit. Each run is bounded in time.
#
# Each row ends with the conditions of its run: the load average, and the share of the server's
# and the client's CPU that the hypervisor took (steal; see common.sh).
#
# Settings (environment): DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (50),
# CUSTOMERS (1000000), SCENARIOS ("uniform zipf batch-json batch-bincode mixed"),
# SERVER_CPU (0), CLIENT_CPU (1), PORT (18080), BARE_PORT (18081), REDIS_PORT (16379),
# DATA (target/loadtest-data: the store, logs and results).
set -euo pipefail

SCRIPT=run.sh
SCENARIOS=${SCENARIOS:-"uniform zipf batch-json batch-bincode mixed"}
PORT=${PORT:-18080}
BARE_PORT=${BARE_PORT:-18081}
REDIS_PORT=${REDIS_PORT:-16379}
. "$(dirname "$0")/common.sh"
BARE=$ROOT/target/release/bare-hyper

RESULTS=$DATA/results.tsv
printf 'run\treq/s\tids/s\tp50 us\tp99 us\tp99.9 us\tmax us\terrors\tconditions\n' > "$RESULTS"

# Runs crv-loadtest against port $2 as run $1 and adds its row to the table.
generate() {
  local label=$1 port=$2 cond out status=0
  shift 2
  out=$DATA/${label// /-}.txt
  conditions_mark
  echo "== $label (load average $MARK_LOAD)"
  "${ON_CLIENT_CPU[@]}" "$LOADTEST" --addr "$HOST:$port" --store "$STORE" \
    --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS" --json "$@" \
    > "$out" || status=$?
  cond=$(conditions)
  sed '$d' "$out"
  if [ "$status" -ge 2 ]; then
    printf '%s\tdid not run\t-\t-\t-\t-\t-\t-\t%s\n' "$label" "$cond" >> "$RESULTS"
  elif command -v jq >/dev/null; then
    tail -n1 "$out" | jq -r --arg run "$label" --arg cond "$cond" \
      '[$run, (.requests_per_s|floor), (if .ids_per_request > 1 then (.ids_per_s|floor) else "-" end),
        .latency.p50_us, .latency.p99_us, .latency.p99_9_us, .latency.max_us, .errors, $cond],
       (.latency_during_selection // empty | [$run + ": during selections", "-", "-",
        .p50_us, .p99_us, .p99_9_us, .max_us, "-", $cond]),
       (.selections // empty | [$run + ": selections", "-", "-",
        (map(.latency_ms * 1000) | sort | .[length / 2 | floor] // 0 | floor), "-", "-",
        (map(.latency_ms * 1000) | max // 0 | floor), (map(select(.failure)) | length), $cond])
      | @tsv' \
      >> "$RESULTS"
  else
    printf '%s\t(jq missing: see %s)\t-\t-\t-\t-\t-\t-\t%s\n' "$label" "$out" "$cond" >> "$RESULTS"
  fi
}

echo "== crv serve on $HOST:$PORT (cpu $SERVER_CPU)"
"${ON_SERVER_CPU[@]}" "$CRV" serve "$STORE" --addr "$HOST:$PORT" 2> "$DATA/serve.log" &
started+=($!)
wait_healthy "$PORT"

for scenario in $SCENARIOS; do
  generate "crv $scenario" "$PORT" --scenario "$scenario"
done

# wrk: the reference HTTP client, same connections, same core, random real ids.
if command -v wrk >/dev/null; then
  conditions_mark
  echo "== wrk against crv (load average $MARK_LOAD)"
  out=$DATA/wrk.txt
  "${ON_CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION%.*}s" --latency \
    -s loadtest/wrk/lookup.lua "http://$HOST:$PORT" -- "$IDS" | tee "$out" \
    || echo "run.sh: wrk failed (its row may be empty)" >&2
  cond=$(conditions)
  awk -v cond="$cond" '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
    /^ +Latency / && !max { max = us($4) }
    /^ +50% / { p50 = us($2) }
    /^ +99% / { p99 = us($2) }
    /^Requests\/sec/ { rps = int($2) }
    /Non-2xx/ { bad += $NF }
    /Socket errors/ { gsub(",", ""); bad += $4 + $6 + $8 + $10 }
    END { printf "wrk crv uniform\t%s\t-\t%d\t%d\t-\t%d\t%d\t%s\n", rps, p50, p99, max, bad, cond }
  ' "$out" >> "$RESULTS"
else
  echo "== wrk not installed: skipped"
fi
stop_started

echo "== bare-hyper on $HOST:$BARE_PORT (cpu $SERVER_CPU)"
"${ON_SERVER_CPU[@]}" "$BARE" --addr "$HOST:$BARE_PORT" 2> "$DATA/bare-hyper.log" &
started+=($!)
wait_healthy "$BARE_PORT"
# Same requests; its fixed body names no id, so only statuses are checked.
generate "bare-hyper uniform" "$BARE_PORT" --scenario uniform --check-every 0
stop_started

# Redis GET: the in-memory key-value reference, pinned the same way, values about the size of
# a crv customer answer.
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null \
  && command -v redis-cli >/dev/null; then
  echo "== redis-server on $HOST:$REDIS_PORT (cpu $SERVER_CPU)"
  "${ON_SERVER_CPU[@]}" redis-server --bind "$HOST" --port "$REDIS_PORT" --save '' \
    --appendonly no --protected-mode yes > "$DATA/redis.log" 2>&1 &
  started+=($!)
  for try in $(seq 100); do
    redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  # Every key redis-benchmark -r can ask for (key:%012d), so each GET finds a value.
  awk -v n="$CUSTOMERS" 'BEGIN {
    value = sprintf("%090d", 0)
    for (i = 0; i < n; i++) {
      key = sprintf("key:%012d", i)
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(key), key, length(value), value
    }
  }' | redis-cli -h "$HOST" -p "$REDIS_PORT" --pipe > /dev/null
  requests=$((DURATION * 150000))
  conditions_mark
  echo "== redis-benchmark GET, $requests requests (load average $MARK_LOAD)"
  out=$DATA/redis-benchmark.csv
  "${ON_CLIENT_CPU[@]}" redis-benchmark -h "$HOST" -p "$REDIS_PORT" -c "$CONNECTIONS" \
    -n "$requests" -r "$CUSTOMERS" -t get --csv | tee "$out" \
    || echo "run.sh: redis-benchmark failed (its row may be empty)" >&2
  cond=$(conditions)
  # CSV: "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
  # "p99_latency_ms","max_latency_ms"
  awk -F, -v cond="$cond" '$1 == "\"GET\"" {
    gsub("\"", ""); printf "redis GET\t%d\t-\t%d\t%d\t-\t%d\t-\t%s\n", $2, $5 * 1000, $7 * 1000, $8 * 1000, cond
  }' "$out" >> "$RESULTS"
  stop_started
else
  echo "== redis-server/redis-benchmark not installed: skipped"
fi

echo
echo "== summary ($(nproc) cores; server on cpu $SERVER_CPU, clients on cpu $CLIENT_CPU)"
column -t -s $'\t' "$RESULTS" 2>/dev/null || cat "$RESULTS"
echo "(rows also in $RESULTS; per-run output beside it)"
