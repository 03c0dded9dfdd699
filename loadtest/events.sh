#!/usr/bin/env bash
# The live events under load, on this machine only (127.0.0.1), beside Redis in the same run:
# for each fsync policy (everysec, always), `crv serve --wal` pinned to one core with
# single-event POSTs from the other core (crv-loadtest's `events` scenario, and wrk with the
# script it writes, DATA/events.lua), against `redis-server --appendonly yes --appendfsync
# <policy>` under `redis-benchmark -t set` on the same cores; then batches of 100 events
# (`events-batch`, everysec), and lookups while events stream at half the batch rate just
# measured (`events-mixed`: lookups in the closed loop, then in the open loop at LOOKUP_RATE a
# second).
# Prints a summary; every process it started is stopped on exit. Each row ends with the
# conditions of its run: the load average, and the share of the server's and the client's CPU
# that the hypervisor took (steal; see common.sh).
#
# Settings (environment): DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (50),
# CUSTOMERS (1000000), BATCH (100), LOOKUP_RATE (5000), POLICIES ("everysec always"),
# SERVER_CPU (0), CLIENT_CPU (1), PORT (18090), REDIS_PORT (16390), DATA (target/loadtest-data).
set -euo pipefail

SCRIPT=events.sh
BATCH=${BATCH:-100}
LOOKUP_RATE=${LOOKUP_RATE:-5000}
POLICIES=${POLICIES:-"everysec always"}
PORT=${PORT:-18090}
REDIS_PORT=${REDIS_PORT:-16390}
export CRV_TOKEN=${CRV_TOKEN:-loadtest-$RANDOM$RANDOM}
for tool in taskset redis-server redis-benchmark redis-cli wrk jq; do
  command -v "$tool" >/dev/null || { echo "events.sh: $tool is missing (apt-get install util-linux redis-server redis-tools wrk jq)" >&2; exit 2; }
done
. "$(dirname "$0")/common.sh"

RESULTS=$DATA/events.tsv
printf 'run\tper s\tp50 us\tp99 us\terrors\tconditions\n' > "$RESULTS"

# Serves a fresh copy of the store with an empty log under `--fsync $1`.
serve_live() {
  rm -rf "$DATA/wal" && cp "$STORE" "$DATA/live.crv"
  "${ON_SERVER_CPU[@]}" "$CRV" serve "$DATA/live.crv" --addr "$HOST:$PORT" --wal "$DATA/wal" \
    --fsync "$1" 2> "$DATA/serve-events.log" &
  started+=($!)
  wait_healthy "$PORT"
}

# crv-loadtest as run $1 with the rest as flags; its row: requests (or events) a second.
generate() {
  local label=$1 cond out
  shift
  out=${label// /-}
  out=$DATA/${out//\//-}.txt
  conditions_mark
  echo "== $label (load average $MARK_LOAD)"
  "${ON_CLIENT_CPU[@]}" "$LOADTEST" --addr "$HOST:$PORT" --store "$STORE" \
    --duration "$DURATION" --warmup "$WARMUP" --connections "$CONNECTIONS" --json "$@" \
    > "$out" || true
  cond=$(conditions)
  sed '$d' "$out"
  tail -n1 "$out" | jq -r --arg run "$label" --arg cond "$cond" \
    '[$run, (if .ids_per_request > 1 then .ids_per_s else .requests_per_s end | floor),
      .latency.p50_us, .latency.p99_us, .errors, $cond],
     (.stream // empty | [$run + ": event stream", (.events_per_s | floor), .latency.p50_us,
      .latency.p99_us, "-", $cond]) | @tsv' >> "$RESULTS"
}

# wrk's requests are formatted once, before the run, as redis-benchmark formats its command
# once and writes each key into it: a request formatted per call (a string per id, three
# concatenations and their garbage) took ~40% of wrk's core in user time and saturated it
# before the server (loadtest/README.md, 2026-12-07).
cat > "$DATA/events.lua" <<LUA
local requests, i = {}, 0
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $CRV_TOKEN"
for line in io.lines("$IDS") do
  requests[#requests + 1] = wrk.format("POST", "/v1/customers/" .. line .. "/events", nil,
    '{"events":[{"type":"purchase","amount":12.5,"time":"2026-11-30T10:00:00Z"}]}')
  if #requests == 100000 then break end
end
request = function() i = i % #requests + 1; return requests[i] end
LUA

for policy in $POLICIES; do
  rm -rf "$DATA/redis" && mkdir -p "$DATA/redis"
  "${ON_SERVER_CPU[@]}" redis-server --bind "$HOST" --port "$REDIS_PORT" --dir "$DATA/redis" \
    --save '' --appendonly yes --appendfsync "$policy" > "$DATA/redis.log" 2>&1 &
  started+=($!)
  for try in $(seq 100); do
    redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  conditions_mark
  echo "== redis-benchmark SET, appendfsync $policy (load average $MARK_LOAD)"
  "${ON_CLIENT_CPU[@]}" redis-benchmark -h "$HOST" -p "$REDIS_PORT" -c "$CONNECTIONS" \
    -n $((DURATION * 40000)) -r "$CUSTOMERS" -d 60 -t set --csv > "$DATA/redis-set.csv"
  cond=$(conditions)
  awk -F, -v cond="$cond" -v run="redis SET aof $policy" '$1 == "\"SET\"" {
    gsub("\"", ""); printf "%s\t%d\t%d\t%d\t-\t%s\n", run, $2, $5 * 1000, $7 * 1000, cond
  }' "$DATA/redis-set.csv" | tee -a "$RESULTS"
  stop_started

  serve_live "$policy"
  generate "crv events $policy" --scenario events
  conditions_mark
  echo "== wrk events $policy (load average $MARK_LOAD)"
  "${ON_CLIENT_CPU[@]}" wrk -t1 -c"$CONNECTIONS" -d"${DURATION%.*}s" --latency \
    -s "$DATA/events.lua" "http://$HOST:$PORT" > "$DATA/wrk-events.txt" || true
  cond=$(conditions)
  awk -v cond="$cond" -v run="wrk crv events $policy" '
    function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; return v * 1e6 }
    /^ +50% / { p50 = us($2) } /^ +99% / { p99 = us($2) }
    /^Requests\/sec/ { rps = int($2) } /Non-2xx/ { bad += $NF }
    END { printf "%s\t%s\t%d\t%d\t%d\t%s\n", run, rps, p50, p99, bad, cond }
  ' "$DATA/wrk-events.txt" | tee -a "$RESULTS"
  if [ "$policy" = everysec ]; then
    generate "crv events-batch $BATCH everysec" --scenario events-batch --batch "$BATCH"
    rate=$(tail -n1 "$DATA/crv-events-batch-$BATCH-everysec.txt" | jq '.ids_per_s / 2 | floor')
    generate "crv events-mixed lookups, events at $rate/s" --scenario events-mixed \
      --batch "$BATCH" --event-rate "$rate"
    generate "crv events-mixed lookups at $LOOKUP_RATE/s open loop, events at $rate/s" \
      --scenario events-mixed --batch "$BATCH" --event-rate "$rate" --rate "$LOOKUP_RATE"
  fi
  stop_started
done

echo
echo "== summary ($(nproc) cores; servers on cpu $SERVER_CPU, clients on cpu $CLIENT_CPU)"
column -t -s $'\t' "$RESULTS" 2>/dev/null || cat "$RESULTS"
