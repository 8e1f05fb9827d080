#!/usr/bin/env bash
# bench/accept-herd.sh - what N event children cost per connection when every
# request comes on a new connection (wrk with Connection: close), or per
# request on kept-alive connections: shows whether idle children wake for
# connections they do not take.
#
# usage: bench/accept-herd.sh CHILDREN PORT [MPMSERVE] [close|ka]
# Starts MPMSERVE (default build-rel/examples/mpmserve) as event with
# CHILDREN children of 8 threads on 127.0.0.1:PORT, loads it for 6 s with
# `taskset -c 1 wrk -t1 -c20`, and prints the requests and the server's CPU
# time per request (utime+stime of the master and its children from
# /proc/PID/stat, before and after). Interleave A/B runs: this machine's
# noise between runs is larger than one run's.
set -euo pipefail
N=$1 PORT=$2
B=${3:-$(dirname "$0")/../build-rel/examples/mpmserve}
MODE=${4:-close}
"$B" --mpm event --listen "127.0.0.1:$PORT" --set StartServers="$N" --set ServerLimit="$N" \
    --set ThreadsPerChild=8 --set MinSpareThreads=$((8 * N)) --set MaxSpareThreads=$((8 * N)) \
    --set MaxRequestWorkers=$((8 * N)) --set ListenBacklog=4096 >/dev/null 2>&1 &
MP=$!
trap 'kill $MP 2>/dev/null; wait $MP 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
sleep 1 # every child past its start
PIDS="$MP $(pgrep -P $MP | tr '\n' ' ')"
cpu_ticks() {
    local t=0 p f
    for p in $PIDS; do
        read -r -a f <"/proc/$p/stat"
        t=$((t + f[13] + f[14]))
    done
    echo $t
}
H=()
[ "$MODE" = close ] && H=(-H 'Connection: close')
c0=$(cpu_ticks)
out=$(taskset -c 1 wrk -t1 -c20 -d6s "${H[@]}" "http://127.0.0.1:$PORT/" 2>&1)
c1=$(cpu_ticks)
reqs=$(echo "$out" | awk '/requests in/ {print $1}')
echo "$MODE children=$N requests=$reqs cpu_us_per_request=$(echo "($c1 - $c0) * 1000000 / $(getconf CLK_TCK) / $reqs" | bc -l | cut -c1-6)"
