# Sourced by run.sh and events.sh (not run by itself): the settings and steps they share.
# Before sourcing, a script sets SCRIPT (its name, for messages), and may set the defaults of
# PORT and REDIS_PORT. Afterwards it has: ROOT (the checkout, the current directory), the
# settings below, `started` (the PIDs `stop_started` stops, also on exit), ON_SERVER_CPU /
# ON_CLIENT_CPU (command prefixes), `wait_healthy PORT`, `conditions_mark` / `conditions`
# (the load average, and the share of the two CPUs the hypervisor took, during a run), the
# release binaries CRV and LOADTEST, and STORE / IDS (a generated store and its ids).
#
# Settings (environment): DURATION (10 s per run), WARMUP (1 s), CONNECTIONS (50),
# CUSTOMERS (1000000), SERVER_CPU (0), CLIENT_CPU (1), DATA (target/loadtest-data).

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-50}
CUSTOMERS=${CUSTOMERS:-1000000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
DATA=${DATA:-$ROOT/target/loadtest-data}
HOST=127.0.0.1

started=()
stop_started() {
  local pid
  for pid in "${started[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  started=()
}
trap stop_started EXIT
trap 'exit 130' INT TERM

# Pinning keeps the server and the generator off each other's core; without two cores it is
# skipped (and the figures mean less).
# Plain command prefixes, not functions: `$!` of a backgrounded simple command is the server
# itself (taskset execs it), so the trap stops the right process.
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  ON_SERVER_CPU=(taskset -c "$SERVER_CPU")
  ON_CLIENT_CPU=(taskset -c "$CLIENT_CPU")
else
  echo "$SCRIPT: taskset or a second core missing: running unpinned" >&2
  ON_SERVER_CPU=()
  ON_CLIENT_CPU=()
fi

# Waits until http://$HOST:$1/healthz answers 200 (bash's /dev/tcp: no curl needed), for at
# most $2 seconds (default 30: a server replaying a log takes a while).
wait_healthy() {
  local port=$1 tries=$((${2:-30} * 10)) try
  for try in $(seq "$tries"); do
    if { exec 3<>"/dev/tcp/$HOST/$port"; } 2>/dev/null; then
      printf 'GET /healthz HTTP/1.0\r\nHost: %s\r\n\r\n' "$HOST" >&3
      if head -n1 <&3 | grep -q ' 200 '; then exec 3<&-; return 0; fi
      exec 3<&-
    fi
    sleep 0.1
  done
  echo "$SCRIPT: nothing healthy on $HOST:$port after ${2:-30} s" >&2
  return 1
}

# The conditions a run met: the load average at its start, and the share of the server's and
# the client's CPU that the hypervisor ran something else on ("steal" in /proc/stat; 0 on bare
# metal). On a virtual machine a stolen millisecond delays every request in flight, so a
# run's tail is only comparable with another's taken at a like steal. `conditions_mark`
# before the run, `conditions` after it: "load 1.23, steal 0.4% / 0.1%".
cpu_ticks() { awk -v cpu="cpu$1" '$1 == cpu { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' /proc/stat; }
conditions_mark() {
  MARK_LOAD=$(cut -d' ' -f1 /proc/loadavg)
  MARK_SERVER=$(cpu_ticks "$SERVER_CPU")
  MARK_CLIENT=$(cpu_ticks "$CLIENT_CPU")
}
conditions() {
  local server client
  server=$(printf '%s %s\n' "$MARK_SERVER" "$(cpu_ticks "$SERVER_CPU")")
  client=$(printf '%s %s\n' "$MARK_CLIENT" "$(cpu_ticks "$CLIENT_CPU")")
  printf 'load %s, steal %s / %s\n' "$MARK_LOAD" "$(steal_share "$server")" "$(steal_share "$client")"
}
# "steal0 total0 steal1 total1" -> the stolen share in percent.
steal_share() {
  awk '{ d = $4 - $2; printf "%.1f%%", (d > 0 ? 100 * ($3 - $1) / d : 0) }' <<< "$1"
}

echo "== building (release)"
cargo build --release --quiet
(cd loadtest && cargo build --release --quiet)
CRV=$ROOT/target/release/crv
LOADTEST=${LOADTEST:-$ROOT/target/release/crv-loadtest}

mkdir -p "$DATA"
STORE=$DATA/customers-$CUSTOMERS.crv
IDS=$DATA/ids-$CUSTOMERS.txt
if [ ! -f "$STORE" ] || [ ! -f "$IDS" ]; then
  echo "== generating $CUSTOMERS customers into $STORE"
  "$CRV" gen --customers "$CUSTOMERS" -o "$DATA/customers-$CUSTOMERS.csv"
  "$CRV" import "$DATA/customers-$CUSTOMERS.csv" -o "$STORE"
  # customer_id is the CSV's first column: the ids file for wrk.
  tail -n +2 "$DATA/customers-$CUSTOMERS.csv" | cut -d, -f1 > "$IDS"
  rm "$DATA/customers-$CUSTOMERS.csv"
fi
