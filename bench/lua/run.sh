#!/usr/bin/env bash
# Lua filter overhead: the same proxy with no filter and with one trivial
# header-adding Lua filter, loaded with wrk against an nginx upstream that
# answers from memory (so the proxy, not the upstream, is the bottleneck).
# pilotfish runs on core 0 (--concurrency 1); wrk and nginx share core 1.
# Besides requests/s, the proxy's own CPU time (utime + stime from /proc)
# per completed request is recorded: on a shared, noisy machine that is the
# steadier number (a busy neighbour slows wrk and nginx too, but does not add
# CPU time to the proxy's requests), and 1 / (CPU per request) is the
# requests/s one core would sustain.  The two configs alternate ROUNDS times
# and the medians are compared.
#   bench/lua/run.sh [build dir] [seconds per run] [rounds]
# Writes bench/results/lua.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${1:-$ROOT/build}
SECS=${2:-5}
ROUNDS=${3:-3}
HOST=127.0.0.1
KEEP_TMP=${KEEP_TMP:-0}
PROXY_CORE=0
LOAD_CORE=1
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
command -v wrk >/dev/null 2>&1 || die "wrk is required"
command -v nginx >/dev/null 2>&1 || die "nginx is required (it is the upstream)"
bench_setup pilotfish-lua-bench

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
UPORT=$(free_port)
mkdir -p "$TMP/upstream"
{
    nginx_common "$TMP/upstream"
    echo "http {"
    nginx_http_common "$TMP/upstream"
    echo "    server { listen $HOST:$UPORT; location / { return 200 \"ok\"; } }"
    echo "}"
} >"$TMP/upstream/nginx.conf"
taskset -c "$LOAD_CORE" nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" \
    -e "$TMP/upstream/error.log" >/dev/null 2>&1 &
STARTED_PIDS+=("$!")
wait_until 10 "$!" port_open "$UPORT" || die "upstream nginx did not come up"

config() { # $1 port, $2 extra filters
cat <<Y
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: $HOST, port_value: $1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: b
          route_config: {virtual_hosts: [{name: v, domains: ["*"], routes: [{match: {prefix: "/"}, route: {cluster: up}}]}]}
          http_filters:
$2
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: up
    load_assignment: {cluster_name: up, endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: $HOST, port_value: $UPORT}}}}]}]}
Y
}
LUA='          - name: lua
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua
              default_source_code:
                inline_string: |
                  function envoy_on_request(h) h:headers():add("x-bench", "1") end'

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # $1 name, $2 filters -> "requests/s CPU-microseconds-per-request"
    local port pid out t0 t1 n rps
    port=$(free_port)
    config "$port" "$2" >"$TMP/$1.yaml"
    taskset -c "$PROXY_CORE" "$BUILD/pilotfish" -c "$TMP/$1.yaml" --concurrency 1 -l warning \
        >"$TMP/$1.log" 2>&1 &
    pid=$!
    STARTED_PIDS+=("$pid")
    wait_until 10 "$pid" port_open "$port" || die "pilotfish ($1) did not come up"
    taskset -c "$LOAD_CORE" wrk -t1 -c16 -d1s "http://$HOST:$port/" >/dev/null   # warm-up
    t0=$(cpu_ticks "$pid")
    out=$(taskset -c "$LOAD_CORE" wrk -t1 -c16 -d"${SECS}s" "http://$HOST:$port/")
    t1=$(cpu_ticks "$pid")
    stop_tree "$pid"
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo "$rps $(python3 -c "print('%.2f' % (($t1 - $t0) * 1e6 / $(getconf CLK_TCK) / $n))")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

NONE=() WITH=() NONE_CPU=() WITH_CPU=()
for ((i = 0; i < ROUNDS; i++)); do
    read -r r c <<<"$(run none "")"; NONE+=("$r"); NONE_CPU+=("$c")
    read -r r c <<<"$(run lua "$LUA")"; WITH+=("$r"); WITH_CPU+=("$c")
    log "round $((i + 1)): none ${NONE[i]}/s ${NONE_CPU[i]}us  lua ${WITH[i]}/s ${WITH_CPU[i]}us"
done
N=$(median "${NONE[@]}")
W=$(median "${WITH[@]}")
NC=$(median "${NONE_CPU[@]}")
WC=$(median "${WITH_CPU[@]}")
RATIO=$(python3 -c "print('%.3f' % ($W / $N))")
CRATIO=$(python3 -c "print('%.3f' % ($NC / $WC))")
# paired: each round's none/lua pair ran back to back, so its ratio is less
# exposed to the machine's load drifting between rounds
PAIRED=$(python3 -c "
import statistics
n = [float(x) for x in '${NONE_CPU[*]}'.split()]
w = [float(x) for x in '${WITH_CPU[*]}'.split()]
print('%.3f' % statistics.median(a / b for a, b in zip(n, w)))")
mkdir -p "$ROOT/bench/results"
cat >"$ROOT/bench/results/lua.md" <<MD
# Lua filter overhead ($(date -u +%Y-%m-%d), commit $(git -C "$ROOT" rev-parse --short HEAD))

\`bench/lua/run.sh\`: wrk -t1 -c16 -d${SECS}s, pilotfish --concurrency 1 on core 0,
wrk and an nginx upstream (answers from memory) on core 1; the two configs
alternate ${ROUNDS} times, medians compared (shared, noisy machine: read the
ratios; CPU time per request is the steadier one).

| config | requests/s (median) | proxy CPU us/request (median) | requests/s runs | CPU us/request runs |
|---|---|---|---|---|
| router only | $N | $NC | ${NONE[*]} | ${NONE_CPU[*]} |
| one Lua filter adding a request header | $W | $WC | ${WITH[*]} | ${WITH_CPU[*]} |

requests/s ratio (Lua / none): $RATIO
requests/s per core from CPU time (none CPU / Lua CPU): $CRATIO
median of the per-round CPU ratios (none / Lua, back-to-back pairs): $PAIRED
MD
cat "$ROOT/bench/results/lua.md"
