# shellcheck shell=bash
# shellcheck disable=SC2016  # bash -c snippets take positional args on purpose
# Helpers shared by the pilotfish benchmark scripts (run.sh, h2.sh). Source it;
# it only defines functions. The caller sets:
#   HOST          address everything listens on (127.0.0.1)
#   TMP KEEP_TMP  temp dir removed by cleanup() unless KEEP_TMP=1
#   STARTED_PIDS  array of pids (process trees) cleanup() stops, newest first
#   ADMIN_PORT    pilotfish admin port (ready_200)
# and calls install_traps once TMP and STARTED_PIDS exist.

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# All descendants of a pid (via /proc), one per line, not including the pid.
descendants() {
    local parent=$1 f stat rest ppid pid _
    local -a kids=()
    for f in /proc/[0-9]*/stat; do
        { read -r stat <"$f"; } 2>/dev/null || continue
        rest=${stat##*) }            # strip "pid (comm) "
        read -r _ ppid _ <<<"$rest"
        if [[ $ppid == "$parent" ]]; then
            pid=${f#/proc/}; pid=${pid%/stat}
            kids+=("$pid")
        fi
    done
    for pid in "${kids[@]}"; do
        echo "$pid"
        descendants "$pid"
    done
}

# Running and not a zombie (an exited child stays a zombie until we wait for it).
alive() {
    local st
    { read -r st <"/proc/$1/stat"; } 2>/dev/null || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# Drop a reaped pid from STARTED_PIDS so cleanup never signals a recycled pid.
forget() {
    local keep=() x
    for x in "${STARTED_PIDS[@]}"; do [[ $x == "$1" ]] || keep+=("$x"); done
    STARTED_PIDS=("${keep[@]}")
}

# Stop a process tree: TERM, bounded wait, then KILL.
stop_tree() {
    local pid=$1 i p
    alive "$pid" || { wait "$pid" 2>/dev/null || true; forget "$pid"; return 0; }
    local -a all=("$pid")
    mapfile -t -O 1 all < <(descendants "$pid")
    kill -TERM "${all[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do           # up to 5 s
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "${all[@]}" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # children re-parented elsewhere (should not happen with foreground servers)
    for p in "${all[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    forget "$pid"
}

cleanup() {
    local rc=$?
    set +e
    local i
    for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do stop_tree "${STARTED_PIDS[i]}"; done
    if [[ $KEEP_TMP == 1 ]]; then log "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
    exit $rc
}
install_traps() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# --------------------------------------------------------------------------
# Network helpers (pure bash, bounded)
# --------------------------------------------------------------------------
port_open() {
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# http_get PORT PATH -> full raw response on stdout (Connection: close)
http_get() {
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$2" "$0" "$1" >&3
        cat <&3' "$HOST" "$1" "$2" 2>/dev/null
}

http_status() { http_get "$1" "$2" | head -n1 | awk '{print $2}'; }

# wait_until TIMEOUT_S PID CMD... : poll CMD every 0.1 s; fail if PID dies or time runs out
wait_until() {
    local limit=$1 pid=$2; shift 2
    local deadline=$((SECONDS + limit))
    while ((SECONDS < deadline)); do
        alive "$pid" || return 2
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

ready_200() { [[ $(http_status "$ADMIN_PORT" /ready) == 200 ]]; }

# Sum of VmRSS (kB) of PID and all its descendants.
rss_kb() {
    local pid=$1 total=0 p v
    for p in "$pid" $(descendants "$pid"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || v=0
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
# --------------------------------------------------------------------------
# nginx config fragments
# --------------------------------------------------------------------------
nginx_common() {  # $1 = prefix dir
    cat <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}

nginx_http_common() {  # $1 = prefix dir
    cat <<EOF
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
EOF
}

# Convert a wrk latency token (e.g. 512.00us, 1.23ms, 2.00s, 1.5m) to ms.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.3f", n }'
}

# Installs the given Debian packages when running as root (bounded in time);
# otherwise says what to install.  Callers check afterwards what they need.
install_packages() {
    (($#)) || return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "installing missing packages: $*"
        export DEBIAN_FRONTEND=noninteractive
        timeout 300 apt-get install -y "$@" >&2 ||
            { timeout 300 apt-get update >&2 && timeout 300 apt-get install -y "$@" >&2; } ||
            log "apt-get install failed; continuing with what is available"
    else
        log "missing packages ($*); run as root or install: apt-get install -y $*"
    fi
}

# Core layout, harness pinning, the temp dir and the exit trap; $1 = temp dir prefix.
bench_setup() {
    NCPU=$(nproc)
    if ((NCPU < 2)); then
        log "WARNING: only $NCPU CPU; proxy and load generator will share it"
        # shellcheck disable=SC2034  # read by the sourcing script
        PROXY_CORE=0; LOAD_CORE=0
    fi
    # Keep the harness itself (RSS sampler, helpers) off the proxy's core.
    taskset -pc "$LOAD_CORE" $$ >/dev/null 2>&1 || true
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    chmod 755 "$TMP"   # nginx workers may run as an unprivileged user
    declare -ga STARTED_PIDS=()
    install_traps
}

# One row of a results table from its rounds (bench/run.sh, bench/h2.sh):
# the round with the median requests/s represents the row (its latencies and
# CPU figures are reported), RSS is the max over rounds.  Reads the callers'
# A_* arrays (keyed "<key>#<round>"), writes R_*[key]; A_CPU, A_PERCPU and
# A_XNOTE may have no entries (bench/run.sh measures no CPU).
bench_aggregate() {
    local key=$1 r k best_k="" n rss_max="" notes="" all_rps=""
    local -a ok=()
    for ((r = 1; r <= ROUNDS; r++)); do
        k="$key#$r"
        [[ -v "A_RPS[$k]" ]] || continue
        if [[ -n ${A_RPS[$k]} ]]; then
            ok+=("${A_RPS[$k]} $k")
            all_rps+="${A_RPS[$k]}/"
            if [[ -z $rss_max ]] || awk -v a="${A_RSS[$k]}" -v b="$rss_max" 'BEGIN{exit !(a > b)}'; then
                rss_max=${A_RSS[$k]}
            fi
        fi
        if [[ -n ${A_NOTE[$k]} && $notes != *"${A_NOTE[$k]}"* ]]; then
            notes+="${notes:+; }${A_NOTE[$k]}"
        fi
    done
    n=${#ok[@]}
    if ((n == 0)); then
        R_RPS[$key]=""; R_STATUS[$key]=${A_STATUS["$key#1"]}; R_NOTE[$key]=$notes
        return 0
    fi
    best_k=$(printf '%s\n' "${ok[@]}" | sort -n | sed -n "$(((n + 1) / 2))p" | cut -d' ' -f2)
    R_RPS[$key]=${A_RPS[$best_k]}; R_P50[$key]=${A_P50[$best_k]}; R_P99[$key]=${A_P99[$best_k]}
    R_CPU[$key]=${A_CPU[$best_k]-}; R_PERCPU[$key]=${A_PERCPU[$best_k]-}
    R_RSS[$key]=$rss_max
    if [[ -n ${A_XNOTE[$best_k]-} ]]; then notes="${A_XNOTE[$best_k]}${notes:+; $notes}"; fi
    if ((ROUNDS > 1)); then
        notes="median of $n/$ROUNDS rounds (${all_rps%/})${notes:+; $notes}"
    fi
    R_NOTE[$key]=$notes
}
