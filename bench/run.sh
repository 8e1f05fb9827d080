#!/usr/bin/env bash
# bench/run.sh - keep-alive "Hello, World!" benchmark of mpmserve, one row per
# strategy that this build has.
#
# For each strategy (prefork, worker, event) it starts mpmserve on an ephemeral
# loopback port pinned to CPU 0, waits until GET / answers "Hello, World!",
# runs a 1 s warm-up, then
#     taskset -c 1 wrk -t1 -c50 -d10s --latency http://127.0.0.1:PORT/
# and prints requests/s, p99 latency and the server's CPU time per request
# (utime+stime, plus the times of reaped children, summed over the server's
# process tree from /proc/PID/stat before and after wrk, ticks from
# getconf CLK_TCK). A strategy the build lacks is detected by trying (mpmserve
# exits with "not available in this build") and skipped. While the
# multi-process master does not exist, mpmserve falls back to one-process mode
# by itself and says so on stderr; the "mode" column shows which ran.
#
# usage: bench/run.sh [options]
#   --duration S     seconds of measured load per strategy (default 10)
#   --quick          same as --duration 3
#   --conns C        wrk connections (default 50)
#   --bin PATH       mpmserve binary (default build/examples/mpmserve)
#   --only A,B       strategies to try (default prefork,worker,event)
#   --one-process    pass --one-process to mpmserve
#   --set D=V        extra mpmserve --set, repeatable
#   --path P         request path (default /)
#   --tls            serve and load over TLS (https): mpmserve --tls-listen with
#                    a self-signed ECDSA P-256 certificate made for the run
#                    (openssl); wrk keeps its connections alive, so this is
#                    the keep-alive TLS cost (add --set TLSPinning=Off for
#                    event's parked mode)
#   --keep           keep the temp dir (server logs, wrk output)
#   -h, --help
#
# Requires: wrk (apt-get install wrk), taskset (util-linux), getconf, curl;
# openssl for --tls.
# Every process it starts is stopped by pid on exit (trap on EXIT/INT/TERM).

set -u
set -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP="$(cd "$HERE/.." && pwd)"

DURATION=10
CONNS=50
BIN="$TOP/build/examples/mpmserve"
ONLY="prefork,worker,event"
ONE_PROCESS=0
REQ_PATH="/"
KEEP=0
TLS=0
SETS=()

die() { echo "bench/run.sh: $*" >&2; exit 2; }
usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="${2:?--duration needs a value}"; shift ;;
    --duration=*) DURATION="${1#*=}" ;;
    --quick) DURATION=3 ;;
    --conns) CONNS="${2:?--conns needs a value}"; shift ;;
    --conns=*) CONNS="${1#*=}" ;;
    --bin) BIN="${2:?--bin needs a value}"; shift ;;
    --bin=*) BIN="${1#*=}" ;;
    --only) ONLY="${2:?--only needs a value}"; shift ;;
    --only=*) ONLY="${1#*=}" ;;
    --one-process) ONE_PROCESS=1 ;;
    --set) SETS+=("--set" "${2:?--set needs Directive=value}"); shift ;;
    --set=*) SETS+=("--set" "${1#*=}") ;;
    --path) REQ_PATH="${2:?--path needs a value}"; shift ;;
    --path=*) REQ_PATH="${1#*=}" ;;
    --keep) KEEP=1 ;;
    --tls) TLS=1 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done

[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "--duration wants whole seconds > 0"
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "--conns wants a number > 0"
command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
command -v taskset >/dev/null || die "taskset not found: apt-get install util-linux"
command -v curl >/dev/null || die "curl not found: apt-get install curl"
[ "$TLS" = 0 ] || command -v openssl >/dev/null || die "--tls needs openssl: apt-get install openssl"
[ -x "$BIN" ] || die "mpmserve not found at $BIN (build it: cmake --build build, or pass --bin)"

HZ="$(getconf CLK_TCK)" || die "getconf CLK_TCK failed"
NCPU="$(nproc)"
SERVER_CPU=0
CLIENT_CPU=1
if [ "$NCPU" -lt 2 ]; then
  echo "bench/run.sh: warning: only $NCPU CPU; server and wrk share CPU 0" >&2
  CLIENT_CPU=0
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/mpmserve-bench.XXXXXX")"
PIDS=()

descendants() { # pid and all its descendants, one per line
  local pid="$1" kids k
  echo "$pid"
  kids="$(ps -o pid= --ppid "$pid" 2>/dev/null)" || return 0
  for k in $kids; do descendants "$k"; done
}

stop_tree() { # TERM the tree, wait up to 10 s, then KILL what is left
  local pid="$1" all p
  kill -0 "$pid" 2>/dev/null || return 0
  all="$(descendants "$pid")"
  for p in $all; do kill -TERM "$p" 2>/dev/null; done
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in $all; do kill -KILL "$p" 2>/dev/null; done
  wait "$pid" 2>/dev/null
  return 0
}

cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_tree "$p"; done
  PIDS=()
  if [ "$KEEP" = 1 ]; then echo "bench/run.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "bench/run.sh: interrupted" >&2; exit 130' INT TERM

SCHEME=http
CURL_TLS=()
if [ "$TLS" = 1 ]; then
  SCHEME=https
  CURL_TLS=(--cacert "$TMP/cert.pem")
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 \
    || { cat "$TMP/openssl.log" >&2; die "openssl req (certificate) failed"; }
fi

# CPU ticks (utime+stime+cutime+cstime) summed over a process tree.
tree_ticks() {
  local sum=0 p rest
  for p in $(descendants "$1"); do
    rest="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
    rest="${rest##*) }" # fields from 3 on; comm may hold spaces
    # shellcheck disable=SC2086
    set -- $rest
    # field 14..17 of stat = positions 12..15 here
    sum=$((sum + ${12} + ${13} + ${14} + ${15}))
  done
  echo "$sum"
}

# Starts mpmserve for strategy $1; sets SRV_PID and SRV_PORT, or returns 1
# (strategy not built) / 2 (failed to start).
start_server() {
  local mpm="$1" out="$TMP/$1.out" err="$TMP/$1.err" args
  args=(--mpm "$mpm" --root "$TMP")
  if [ "$TLS" = 1 ]; then
    args+=(--tls-listen 127.0.0.1:0 --cert "$TMP/cert.pem" --key "$TMP/key.pem")
  else
    args+=(--listen 127.0.0.1:0)
  fi
  [ "$ONE_PROCESS" = 1 ] && args+=(--one-process)
  args+=("${SETS[@]+"${SETS[@]}"}")
  # Own session (setsid execs in place, so $! stays the server pid): a signal
  # the server sends to its process group cannot reach this script.
  setsid taskset -c "$SERVER_CPU" "$BIN" "${args[@]}" >"$out" 2>"$err" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  SRV_PORT=""
  for _ in $(seq 200); do # up to 10 s for the "listening on" line
    if ! kill -0 "$SRV_PID" 2>/dev/null; then
      wait "$SRV_PID" 2>/dev/null
      if grep -q "not available in this build" "$err"; then return 1; fi
      echo "bench/run.sh: mpmserve --mpm $mpm failed to start:" >&2
      sed 's/^/    /' "$err" >&2
      return 2
    fi
    SRV_PORT="$(sed -n 's/^mpmserve: listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$out" | head -n1)"
    [ -n "$SRV_PORT" ] && break
    sleep 0.05
  done
  [ -n "$SRV_PORT" ] || { echo "bench/run.sh: no listening line from mpmserve --mpm $mpm" >&2; return 2; }
  for _ in $(seq 200); do # readiness: the route answers
    if [ "$(curl -s "${CURL_TLS[@]+"${CURL_TLS[@]}"}" --max-time 1 "$SCHEME://127.0.0.1:$SRV_PORT$REQ_PATH" 2>/dev/null)" = "Hello, World!" ]; then
      return 0
    fi
    sleep 0.05
  done
  echo "bench/run.sh: mpmserve --mpm $mpm never answered GET $REQ_PATH" >&2
  return 2
}

# Converts a wrk latency ("850.00us", "1.23ms", "2.00s") to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
    printf "%.3f", n }'
}

echo "mpmserve keep-alive benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -r), $NCPU CPUs"
echo "binary: $BIN ($("$BIN" --version 2>/dev/null))"
echo "load: taskset -c $CLIENT_CPU wrk -t1 -c$CONNS -d${DURATION}s --latency $SCHEME://127.0.0.1:PORT$REQ_PATH (server on CPU $SERVER_CPU)"
echo
printf '%-8s %-12s %12s %10s %14s %10s %8s\n' strategy mode "req/s" "p99 ms" "CPU us/req" "CPU %" errors
ROWS=0
IFS=',' read -r -a STRATS <<<"$ONLY"
for mpm in "${STRATS[@]}"; do
  start_server "$mpm"
  rc=$?
  if [ "$rc" = 1 ]; then
    printf '%-8s %s\n' "$mpm" "(not in this build)"
    continue
  elif [ "$rc" != 0 ]; then
    stop_tree "$SRV_PID"
    printf '%-8s %s\n' "$mpm" "(failed to start; see above)"
    continue
  fi
  mode="multi"
  if [ "$ONE_PROCESS" = 1 ] || grep -q "one-process mode" "$TMP/$mpm.err"; then mode="one-process"; fi
  url="$SCHEME://127.0.0.1:$SRV_PORT$REQ_PATH"

  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null 2>&1 # warm-up

  t0="$(tree_ticks "$SRV_PID")"
  taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$url" >"$TMP/$mpm.wrk" 2>&1 &
  WRK_PID=$!
  PIDS+=("$WRK_PID")
  wait "$WRK_PID"
  t1="$(tree_ticks "$SRV_PID")"

  W="$TMP/$mpm.wrk"
  rps="$(awk '/^Requests\/sec:/ {print $2}' "$W")"
  reqs="$(awk '/requests in/ {print $1}' "$W")"
  p99="$(awk '$1 == "99%" {print $2}' "$W")"
  errs="$(awk '/Socket errors/ {gsub(/,/, ""); e += $4 + $6 + $8 + $10} /Non-2xx/ {e += $NF} END {print e + 0}' "$W")"
  if [ -z "$rps" ] || [ -z "$reqs" ] || [ "$reqs" = 0 ]; then
    printf '%-8s %-12s %s\n' "$mpm" "$mode" "(wrk failed:)"
    sed 's/^/    /' "$W"
  else
    ticks=$((t1 - t0))
    cpu_us_req="$(awk -v t="$ticks" -v hz="$HZ" -v n="$reqs" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')"
    cpu_pct="$(awk -v t="$ticks" -v hz="$HZ" -v d="$DURATION" 'BEGIN {printf "%.1f", t / hz / d * 100}')"
    printf '%-8s %-12s %12.0f %10s %14s %10s %8s\n' "$mpm" "$mode" "$rps" "$(to_ms "$p99")" \
      "$cpu_us_req" "$cpu_pct" "$errs"
    ROWS=$((ROWS + 1))
  fi
  stop_tree "$SRV_PID"
done
echo
echo "CPU us/req: server process tree CPU time (user+system, CLK_TCK=$HZ) / requests completed."
echo "errors: wrk socket errors (connect/read/write/timeout) + non-2xx responses."
[ "$ROWS" -gt 0 ] || exit 1
