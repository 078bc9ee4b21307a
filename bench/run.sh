#!/usr/bin/env bash
# shellcheck disable=SC2016  # bash -c snippets take positional args on purpose
# pilotfish HTTP/1.1 reverse-proxy benchmark.
#
# Compares pilotfish against haproxy and nginx-as-proxy, each confined to ONE
# core (core 0), in front of the same nginx upstream, with wrk as the load
# generator. Upstream and wrk share core 1. See bench/README.md.
#
# Environment:
#   DURATION     measurement seconds per proxy            (default 10)
#   CONNECTIONS  wrk connections                          (default 50)
#   WARMUP       warm-up seconds per proxy                (default 2)
#   ROUNDS       run all proxies round-robin this many times and report the
#                median round per proxy (default 1; use 3+ on a noisy box)
#   PROXIES      space-separated subset of: pilotfish haproxy nginx
#                                                         (default: all three)
#   PILOTFISH    path to the pilotfish binary             (default: build/pilotfish)
#   START_TIMEOUT seconds a proxy gets to come up         (default 10)
#   KEEP_TMP=1   keep the temp dir with configs and logs
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
RESULTS_DIR="$SCRIPT_DIR/results"

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-50}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1}
PROXIES=${PROXIES:-"pilotfish haproxy nginx"}
PILOTFISH=${PILOTFISH:-"$REPO_DIR/build/pilotfish"}
START_TIMEOUT=${START_TIMEOUT:-10}
KEEP_TMP=${KEEP_TMP:-0}

UPSTREAM_PORT=18080
PROXY_PORT=18000
ADMIN_PORT=19901
HOST=127.0.0.1
PROXY_CORE=0
LOAD_CORE=1
BODY='hello from upstream, 64 byte body .......................'

# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"   # log die, process/network helpers, nginx fragments, to_ms

for v in DURATION CONNECTIONS WARMUP START_TIMEOUT ROUNDS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for p in $PROXIES; do
    case $p in pilotfish|haproxy|nginx) ;; *) die "unknown proxy '$p' in PROXIES (valid: pilotfish haproxy nginx)";; esac
done

# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v nginx   >/dev/null 2>&1 || missing+=(nginx-light)
    command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
    command -v wrk     >/dev/null 2>&1 || missing+=(wrk)
    install_packages "${missing[@]}"
    command -v wrk   >/dev/null 2>&1 || die "wrk is required"
    command -v nginx >/dev/null 2>&1 || die "nginx is required (it is the upstream)"
    command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is required"
}
ensure_tools

bench_setup pilotfish-bench


# --------------------------------------------------------------------------
# Upstream
# --------------------------------------------------------------------------
for port in $UPSTREAM_PORT $PROXY_PORT $ADMIN_PORT; do
    port_open "$port" && die "port $port on $HOST is already in use; stop whatever is listening there"
done


mkdir -p "$TMP/upstream"
{
    nginx_common "$TMP/upstream"
    echo "http {"
    nginx_http_common "$TMP/upstream"
    cat <<EOF
    server {
        listen $HOST:$UPSTREAM_PORT;
        default_type text/plain;
        location / { return 200 "$BODY\n"; }
    }
}
EOF
} >"$TMP/upstream/nginx.conf"

log "starting upstream nginx on $HOST:$UPSTREAM_PORT (core $LOAD_CORE)"
taskset -c "$LOAD_CORE" nginx -p "$TMP/upstream" -c "$TMP/upstream/nginx.conf" -e "$TMP/upstream/error.log" \
    >"$TMP/upstream/stdout.log" 2>&1 &
UPSTREAM_PID=$!
STARTED_PIDS+=("$UPSTREAM_PID")
if ! wait_until 10 "$UPSTREAM_PID" port_open "$UPSTREAM_PORT"; then
    cat "$TMP/upstream/stdout.log" "$TMP/upstream/error.log" >&2 2>/dev/null || true
    die "upstream nginx did not come up"
fi
http_get "$UPSTREAM_PORT" / | grep -q "hello from upstream" || die "upstream does not serve the expected body"

# --------------------------------------------------------------------------
# Proxy configs and launch commands
# --------------------------------------------------------------------------
write_pilotfish_config() {
    cat >"$1" <<EOF
static_resources:
  listeners:
  - name: bench
    address: {socket_address: {address: $HOST, port_value: $PROXY_PORT}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: upstream}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: $HOST, port_value: $UPSTREAM_PORT}}}
admin:
  address: {socket_address: {address: $HOST, port_value: $ADMIN_PORT}}
EOF
}

write_haproxy_config() {
    cat >"$1" <<EOF
global
    nbthread 1
    maxconn 4096
    log stderr format raw local0 err

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend bench
    bind $HOST:$PROXY_PORT
    default_backend upstream

backend upstream
    server u1 $HOST:$UPSTREAM_PORT
EOF
}

write_nginx_proxy_config() {  # $1 = prefix dir
    {
        nginx_common "$1"
        echo "http {"
        nginx_http_common "$1"
        cat <<EOF
    upstream backend {
        server $HOST:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen $HOST:$PROXY_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$1/nginx.conf"
}

proxy_label() {
    case $1 in
        pilotfish) echo pilotfish ;;
        haproxy)   echo "haproxy $(haproxy -v 2>/dev/null | awk 'NR==1{print $3}')" ;;
        nginx)     echo "nginx $(nginx -v 2>&1 | sed -n 's|.*nginx/||p')" ;;
    esac
}

# start_proxy NAME DIR -> sets PROXY_PID (run in this shell, not a $(...) subshell,
# so the proxy stays our child and can be waited for)
start_proxy() {
    local name=$1 dir=$2
    case $name in
        pilotfish)
            write_pilotfish_config "$dir/pilotfish.yaml"
            taskset -c "$PROXY_CORE" "$PILOTFISH" -c "$dir/pilotfish.yaml" --concurrency 1 -l warning \
                >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
        haproxy)
            write_haproxy_config "$dir/haproxy.cfg"
            taskset -c "$PROXY_CORE" haproxy -db -f "$dir/haproxy.cfg" \
                >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
        nginx)
            write_nginx_proxy_config "$dir"
            taskset -c "$PROXY_CORE" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
                >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
    esac
    PROXY_PID=$!
    STARTED_PIDS+=("$PROXY_PID")
}

proxy_available() {
    case $1 in
        pilotfish) [[ -x $PILOTFISH ]] ;;
        haproxy)   command -v haproxy >/dev/null 2>&1 ;;
        nginx)     command -v nginx >/dev/null 2>&1 ;;
    esac
}

# --------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------
URL="http://$HOST:$PROXY_PORT/"
WRK_PARAMS="-t1 -c$CONNECTIONS -d${DURATION}s --latency"

declare -A R_RPS R_P50 R_P99 R_RSS R_CPU R_PERCPU R_NOTE R_LABEL R_STATUS

bench_one() {
    local name=$1
    local dir="$TMP/$name" pid rc
    mkdir -p "$dir"
    R_LABEL[$name]=$(proxy_label "$name")
    R_RPS[$name]=""; R_P50[$name]=""; R_P99[$name]=""; R_RSS[$name]=""; R_NOTE[$name]=""; R_STATUS[$name]=""

    if ! proxy_available "$name"; then
        R_STATUS[$name]="skipped"
        R_NOTE[$name]="not installed"
        if [[ $name == pilotfish ]]; then R_STATUS[$name]="failed to start"; R_NOTE[$name]="$PILOTFISH not found (build it first)"; fi
        log "$name: ${R_NOTE[$name]}"
        return 0
    fi

    log "$name: starting on core $PROXY_CORE"
    start_proxy "$name" "$dir"
    pid=$PROXY_PID

    rc=0
    wait_until "$START_TIMEOUT" "$pid" port_open "$PROXY_PORT" || rc=$?
    if ((rc == 0)) && [[ $name == pilotfish ]]; then
        wait_until "$START_TIMEOUT" "$pid" ready_200 || rc=$?
    fi
    if ((rc != 0)); then
        R_STATUS[$name]="failed to start"
        if ((rc == 2)); then R_NOTE[$name]="process exited during startup"; else R_NOTE[$name]="not ready within ${START_TIMEOUT}s"; fi
        log "$name: ${R_NOTE[$name]}; last log lines:"
        tail -n 20 "$dir/stdout.log" "$dir/error.log" 2>/dev/null | sed 's/^/    /' >&2 || true
        stop_tree "$pid"
        return 0
    fi

    # Sanity: the proxy must actually forward to the upstream.
    local resp
    resp=$(http_get "$PROXY_PORT" / || true)
    if [[ $resp != "HTTP/1."?" 200"* || $resp != *"hello from upstream"* ]]; then
        R_STATUS[$name]="bad response"
        R_NOTE[$name]="GET / did not return the upstream body: '$(head -n1 <<<"$resp" | tr -d '\r|' | cut -c1-40)'"
        log "$name: ${R_NOTE[$name]}"
        stop_tree "$pid"
        return 0
    fi

    log "$name: warm-up ${WARMUP}s"
    # Background + wait (not foreground) so INT/TERM traps fire immediately.
    timeout $((WARMUP + 20)) taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$URL" \
        >"$dir/warmup.txt" 2>&1 &
    local warm_pid=$!
    STARTED_PIDS+=("$warm_pid")
    wait "$warm_pid" || log "$name: warm-up wrk exited non-zero"
    forget "$warm_pid"

    log "$name: measuring ${DURATION}s (wrk $WRK_PARAMS)"
    timeout $((DURATION + 30)) taskset -c "$LOAD_CORE" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL" \
        >"$dir/wrk.txt" 2>&1 &
    local wrk_pid=$! rss max_rss=0
    STARTED_PIDS+=("$wrk_pid")
    # Sample RSS while under load (same connections open); keep the peak.
    while alive "$wrk_pid"; do
        if alive "$pid"; then
            rss=$(rss_kb "$pid")
            if ((rss > max_rss)); then max_rss=$rss; fi
        fi
        sleep 0.5
    done
    rc=0; wait "$wrk_pid" || rc=$?
    forget "$wrk_pid"
    if alive "$pid"; then
        rss=$(rss_kb "$pid")
        if ((rss > max_rss)); then max_rss=$rss; fi
    fi

    local alive_after=1
    alive "$pid" || alive_after=0
    stop_tree "$pid"

    if ((rc != 0)); then
        R_STATUS[$name]="wrk failed"
        R_NOTE[$name]="wrk exit code $rc"
        log "$name: ${R_NOTE[$name]}"; sed 's/^/    /' "$dir/wrk.txt" >&2
        return 0
    fi

    local rps p50 p99 non2xx errs
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$dir/wrk.txt")
    p50=$(awk '$1 == "50%" {print $2}' "$dir/wrk.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$dir/wrk.txt")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$dir/wrk.txt")
    errs=$(sed -n 's/^ *Socket errors: *//p' "$dir/wrk.txt")

    R_RPS[$name]=$(printf '%.0f' "${rps:-0}")
    if [[ -n $p50 ]]; then R_P50[$name]="$(to_ms "$p50") ms"; fi
    if [[ -n $p99 ]]; then R_P99[$name]="$(to_ms "$p99") ms"; fi
    R_RSS[$name]=$(awk -v k="$max_rss" 'BEGIN {printf "%.1f", k / 1024}')
    local note=""
    if [[ -n $non2xx ]]; then note+="$non2xx non-2xx responses; "; fi
    if [[ -n $errs ]]; then note+="socket errors: $errs; "; fi
    if ((!alive_after)); then note+="proxy died during run; "; fi
    R_NOTE[$name]=${note%; }
    log "$name: ${R_RPS[$name]} req/s, p50 ${R_P50[$name]}, p99 ${R_P99[$name]}, RSS ${R_RSS[$name]} MiB${R_NOTE[$name]:+ (${R_NOTE[$name]})}"
}

mkdir -p "$RESULTS_DIR"
# Per-round results, keyed "proxy#round".
declare -A A_RPS A_P50 A_P99 A_RSS A_CPU A_PERCPU A_XNOTE A_NOTE A_STATUS GIVE_UP
for ((round = 1; round <= ROUNDS; round++)); do
    ((ROUNDS == 1)) || log "=== round $round/$ROUNDS"
    for p in $PROXIES; do
        [[ -z ${GIVE_UP[$p]:-} ]] || continue
        bench_one "$p"
        k="$p#$round"
        A_RPS[$k]=${R_RPS[$p]}; A_P50[$k]=${R_P50[$p]}; A_P99[$k]=${R_P99[$p]}
        A_RSS[$k]=${R_RSS[$p]}; A_NOTE[$k]=${R_NOTE[$p]}; A_STATUS[$k]=${R_STATUS[$p]}
        # A proxy that cannot start (or answers wrongly) will not do better next round.
        case ${R_STATUS[$p]} in "failed to start"|skipped|"bad response") GIVE_UP[$p]=1 ;; esac
    done
done

for p in $PROXIES; do bench_aggregate "$p"; done

# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
STAMP=$(date +%Y-%m-%d-%H%M)
CPU_MODEL=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ {print $2; exit}')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
HA_RPS=${R_RPS[haproxy]:-}

report() {
    cat <<EOF
# pilotfish HTTP/1.1 proxy benchmark — $(date '+%Y-%m-%d %H:%M %Z')

- host: \`nproc\` = $NCPU, CPU: ${CPU_MODEL:-unknown}, kernel: $(uname -r), load avg before report: $LOADAVG
- load: \`taskset -c $LOAD_CORE wrk $WRK_PARAMS $URL\` (after a ${WARMUP}s warm-up with the same connection count)
- pinning: proxy on core $PROXY_CORE (single worker/thread), wrk + upstream on core $LOAD_CORE
- upstream: nginx $(nginx -v 2>&1 | sed -n 's|.*nginx/||p'), \`return 200\` with a fixed $((${#BODY} + 1))-byte body, keep-alive;
  every proxy keeps upstream connections alive
- RSS: peak of VmRSS summed over the proxy's processes, sampled every 0.5 s while wrk's connections were open
- rounds: $ROUNDS (proxies run round-robin; each row is that proxy's median-requests/s round, RSS is the max over rounds)

> The machine is shared and noisy: absolute requests/s vary run to run.
> Compare the **ratio vs haproxy** (measured back to back on the same box, so shared noise mostly cancels), not raw numbers across runs.

| proxy | requests/s (1 core) | ratio vs haproxy | p50 | p99 | RSS MiB | notes |
|---|---:|---:|---:|---:|---:|---|
EOF
    local p rps ratio
    for p in $PROXIES; do
        rps=${R_RPS[$p]:-}
        if [[ -z $rps ]]; then
            printf '| %s | %s | – | – | – | – | %s |\n' "${R_LABEL[$p]}" "${R_STATUS[$p]:-failed}" "${R_NOTE[$p]}"
            continue
        fi
        if [[ -n $HA_RPS && $HA_RPS != 0 ]]; then
            ratio=$(awk -v a="$rps" -v b="$HA_RPS" 'BEGIN {printf "%.2f", a / b}')
        else
            ratio="n/a"
        fi
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "${R_LABEL[$p]}" "$rps" "$ratio" \
            "${R_P50[$p]:-–}" "${R_P99[$p]:-–}" "${R_RSS[$p]:-–}" "${R_NOTE[$p]:-}"
    done
}

OUT="$RESULTS_DIR/http1-$STAMP.md"
report >"$OUT"
cp "$OUT" "$RESULTS_DIR/latest-http1.md"
echo
cat "$OUT"
echo
log "wrote $OUT and $RESULTS_DIR/latest-http1.md"
