#!/usr/bin/env bash
# pilotfish HTTP/2, TLS and gRPC benchmark.
#
# Compares pilotfish against nghttpx, haproxy and nginx, each confined to ONE core
# (core 0, one worker/thread); load generators and upstreams share core 1.
# Scenarios (SCENARIOS, run round-robin across proxies):
#   tls-h2      h2load over TLS (ALPN h2) -> proxy -> nginx HTTP/1.1 keep-alive upstream
#   handshake   full TLS 1.2 handshake + one HTTP/1.0 request per connection
#               (parallel `openssl s_time -new -www /`, no session resumption)
#   grpc-unary  Go echo-client -load -rpc unary (h2c) -> proxy -> Go echo-server (h2c)
#   grpc-bidi   same, -rpc bidi (ping-pong messages on one stream per worker)
#   grpc-unary-java  the Java client's (grpc-java/Netty) load mode, unary
# See bench/README.md.
#
# Environment:
#   DURATION          measurement seconds per proxy and scenario   (default 10)
#   WARMUP            warm-up seconds before each measurement      (default 2)
#   ROUNDS            round-robin rounds; rows are each proxy's median round (default 1)
#   PROXIES           subset of: pilotfish nghttpx haproxy nginx   (default: all four)
#   SCENARIOS         subset of: tls-h2 handshake grpc-unary grpc-bidi grpc-unary-java
#                                                                  (default: all five)
#   CONNECTIONS       h2load connections (tls-h2)                  (default 50)
#   STREAMS           h2load max concurrent streams per connection (default 10)
#   HS_CLIENTS        parallel `openssl s_time` processes (handshake) (default 32)
#   GRPC_CONCURRENCY  echo-client -concurrency                     (default 50)
#   GRPC_CONNS        echo-client -conns                           (default 1)
#   TLS_KEY           server key type: rsa2048 | ec256             (default rsa2048)
#   PILOTFISH         pilotfish binary                             (default build/pilotfish)
#   INTEROP_BIN       dir with echo-server, echo-client, java-client (default build-interop/bin)
#   START_TIMEOUT     seconds a proxy gets to come up              (default 10)
#   KEEP_TMP=1        keep the temp dir with configs, logs and raw tool output
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
RESULTS_DIR="$SCRIPT_DIR/results"
# shellcheck source=lib.sh
source "$SCRIPT_DIR/lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-1}
PROXIES=${PROXIES:-"pilotfish nghttpx haproxy nginx"}
SCENARIOS=${SCENARIOS:-"tls-h2 handshake grpc-unary grpc-bidi grpc-unary-java"}
CONNECTIONS=${CONNECTIONS:-50}
STREAMS=${STREAMS:-10}
HS_CLIENTS=${HS_CLIENTS:-32}
GRPC_CONCURRENCY=${GRPC_CONCURRENCY:-50}
GRPC_CONNS=${GRPC_CONNS:-1}
TLS_KEY=${TLS_KEY:-rsa2048}
PILOTFISH=${PILOTFISH:-"$REPO_DIR/build/pilotfish"}
INTEROP_BIN=${INTEROP_BIN:-"$REPO_DIR/build-interop/bin"}
START_TIMEOUT=${START_TIMEOUT:-10}
KEEP_TMP=${KEEP_TMP:-0}

# Ports differ from run.sh's so both scripts can run on the same host.
HOST=127.0.0.1
TLS_PORT=18443        # proxy, TLS (ALPN h2, http/1.1)
H2C_PORT=18002        # proxy, h2c prior knowledge (gRPC)
UPSTREAM_PORT=18081   # nginx HTTP/1.1 upstream
ECHO_PORT=18051       # Go gRPC echo-server (h2c)
ADMIN_PORT=19902      # pilotfish admin
PROXY_CORE=0
LOAD_CORE=1
BODY='hello from upstream, 64 byte body .......................'
ECHO_SERVER="$INTEROP_BIN/echo-server"
ECHO_CLIENT="$INTEROP_BIN/echo-client"
JAVA_CLIENT="$INTEROP_BIN/java-client"

for v in DURATION WARMUP ROUNDS CONNECTIONS STREAMS HS_CLIENTS GRPC_CONCURRENCY GRPC_CONNS START_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for p in $PROXIES; do
    case $p in pilotfish|nghttpx|haproxy|nginx) ;; *) die "unknown proxy '$p' in PROXIES (valid: pilotfish nghttpx haproxy nginx)";; esac
done
for s in $SCENARIOS; do
    case $s in tls-h2|handshake|grpc-unary|grpc-bidi|grpc-unary-java) ;;
        *) die "unknown scenario '$s' in SCENARIOS (valid: tls-h2 handshake grpc-unary grpc-bidi grpc-unary-java)";; esac
done
case $TLS_KEY in rsa2048|ec256) ;; *) die "TLS_KEY must be rsa2048 or ec256";; esac

# --------------------------------------------------------------------------
# Tools
# --------------------------------------------------------------------------
ensure_tools() {
    local missing=()
    command -v nginx   >/dev/null 2>&1 || missing+=(nginx-light)
    command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
    command -v h2load  >/dev/null 2>&1 || missing+=(nghttp2-client)
    command -v nghttpx >/dev/null 2>&1 || missing+=(nghttp2-proxy)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    install_packages "${missing[@]}"
    command -v nginx   >/dev/null 2>&1 || die "nginx is required (it is the HTTP/1.1 upstream)"
    command -v openssl >/dev/null 2>&1 || die "openssl is required (certificates, handshake scenario)"
    command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is required"
}
ensure_tools

bench_setup pilotfish-bench-h2

for port in $TLS_PORT $H2C_PORT $UPSTREAM_PORT $ECHO_PORT $ADMIN_PORT; do
    port_open "$port" && die "port $port on $HOST is already in use; stop whatever is listening there"
done

# --------------------------------------------------------------------------
# Certificates (throwaway, generated per run)
# --------------------------------------------------------------------------
CERT_DIR="$TMP/certs"
mkdir -p "$CERT_DIR"
(
    cd "$CERT_DIR"
    if [[ $TLS_KEY == ec256 ]]; then keyopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); else keyopt=(-newkey rsa:2048); fi
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout ca.key -out ca.crt \
        -subj "/CN=pilotfish bench CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req "${keyopt[@]}" -nodes -sha256 -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -sha256 \
        -extfile server.ext -out server.crt 2>/dev/null
    cat server.crt server.key >server.pem   # haproxy wants both in one file
    chmod 644 ./*
) || die "certificate generation failed"
CERT="$CERT_DIR/server.crt" KEY="$CERT_DIR/server.key"

# --------------------------------------------------------------------------
# Upstreams (core 1): nginx HTTP/1.1 and the Go gRPC echo server
# --------------------------------------------------------------------------
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
    >"$TMP/upstream/stdout.log" 2>&1 </dev/null &
UPSTREAM_PID=$!
STARTED_PIDS+=("$UPSTREAM_PID")
if ! wait_until 10 "$UPSTREAM_PID" port_open "$UPSTREAM_PORT"; then
    cat "$TMP/upstream/stdout.log" "$TMP/upstream/error.log" >&2 2>/dev/null || true
    die "upstream nginx did not come up"
fi
http_get "$UPSTREAM_PORT" / | grep -q "hello from upstream" || die "upstream does not serve the expected body"

HAVE_GRPC=0
for s in $SCENARIOS; do [[ $s == grpc-* ]] && HAVE_GRPC=1; done
GRPC_SKIP=""
if ((HAVE_GRPC)); then
    if [[ ! -x $ECHO_SERVER || ! -x $ECHO_CLIENT ]]; then
        GRPC_SKIP="$ECHO_SERVER / $ECHO_CLIENT not built (tests/interop/build.sh)"
        log "gRPC scenarios skipped: $GRPC_SKIP"
    else
        mkdir -p "$TMP/echo"
        log "starting echo-server on $HOST:$ECHO_PORT (core $LOAD_CORE)"
        taskset -c "$LOAD_CORE" "$ECHO_SERVER" -addr "$HOST:$ECHO_PORT" -name bench \
            >"$TMP/echo/stdout.log" 2>&1 </dev/null &
        ECHO_PID=$!
        STARTED_PIDS+=("$ECHO_PID")
        if ! wait_until 10 "$ECHO_PID" port_open "$ECHO_PORT"; then
            tail -n 20 "$TMP/echo/stdout.log" >&2 || true
            die "echo-server did not come up"
        fi
    fi
fi

# --------------------------------------------------------------------------
# Proxy configs. KIND is "tls" (TLS listener -> nginx HTTP/1.1 upstream) or
# "grpc" (h2c listener -> echo-server over h2c).
# --------------------------------------------------------------------------
scenario_kind() { case $1 in grpc-*) echo grpc ;; *) echo tls ;; esac; }
scenario_port() { case $1 in grpc-*) echo "$H2C_PORT" ;; *) echo "$TLS_PORT" ;; esac; }

write_pilotfish_config() {  # $1 file, $2 kind
    local listener cluster
    if [[ $2 == tls ]]; then
        listener=$(cat <<EOF
  - name: bench_tls
    address: {socket_address: {address: $HOST, port_value: $TLS_PORT}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: "$CERT"}
              private_key: {filename: "$KEY"}
EOF
)
        cluster=$(cat <<EOF
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: $HOST, port_value: $UPSTREAM_PORT}}}
EOF
)
    else
        listener=$(cat <<EOF
  - name: bench_h2c
    address: {socket_address: {address: $HOST, port_value: $H2C_PORT}}
    filter_chains:
    -
EOF
)
        cluster=$(cat <<EOF
  - name: upstream
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: $HOST, port_value: $ECHO_PORT}}}
EOF
)
    fi
    cat >"$1" <<EOF
static_resources:
  listeners:
$listener
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route: {cluster: upstream, timeout: 0s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
$cluster
admin:
  address: {socket_address: {address: $HOST, port_value: $ADMIN_PORT}}
EOF
}

write_haproxy_config() {  # $1 file, $2 kind
    cat >"$1" <<EOF
global
    nbthread 1
    maxconn 4096
    log stderr format raw local0 err
    tune.ssl.default-dh-param 2048
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

EOF
    if [[ $2 == tls ]]; then
        cat >>"$1" <<EOF
frontend bench
    bind $HOST:$TLS_PORT ssl crt $CERT_DIR/server.pem alpn h2,http/1.1
    default_backend upstream

backend upstream
    server u1 $HOST:$UPSTREAM_PORT
EOF
    else
        cat >>"$1" <<EOF
frontend bench
    bind $HOST:$H2C_PORT proto h2
    default_backend upstream

backend upstream
    server g1 $HOST:$ECHO_PORT proto h2
EOF
    fi
}

write_nginx_proxy_config() {  # $1 prefix dir, $2 kind
    {
        nginx_common "$1"
        echo "http {"
        nginx_http_common "$1"
        echo "    grpc_buffer_size 16k;"
        if [[ $2 == tls ]]; then
            cat <<EOF
    upstream backend {
        server $HOST:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen $HOST:$TLS_PORT ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
        else
            cat <<EOF
    upstream grpcbackend {
        server $HOST:$ECHO_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen $HOST:$H2C_PORT http2;
        location / { grpc_pass grpc://grpcbackend; }
    }
}
EOF
        fi
    } >"$1/nginx.conf"
}

proxy_label() {
    case $1 in
        pilotfish) echo pilotfish ;;
        nghttpx)   echo "nghttpx $(nghttpx --version 2>/dev/null | sed -n 's|.*nghttp2/||p')" ;;
        haproxy)   echo "haproxy $(haproxy -v 2>/dev/null | awk 'NR==1{print $3}')" ;;
        nginx)     echo "nginx $(nginx -v 2>&1 | sed -n 's|.*nginx/||p')" ;;
        direct)    echo "direct to echo-server (no proxy)" ;;
    esac
}

proxy_available() {
    case $1 in
        pilotfish) [[ -x $PILOTFISH ]] ;;
        *)         command -v "$1" >/dev/null 2>&1 ;;
    esac
}

# start_proxy NAME KIND DIR -> sets PROXY_PID (runs in this shell so the proxy stays our child)
start_proxy() {
    local name=$1 kind=$2 dir=$3
    case $name in
        pilotfish)
            write_pilotfish_config "$dir/pilotfish.yaml" "$kind"
            taskset -c "$PROXY_CORE" "$PILOTFISH" -c "$dir/pilotfish.yaml" --concurrency 1 -l warning \
                --drain-time-s 1 >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
        nghttpx)
            : >"$dir/empty.conf"
            local -a args=(--conf="$dir/empty.conf" --workers=1 --log-level=WARN --no-ocsp
                           --errorlog-file="$dir/error.log")
            if [[ $kind == tls ]]; then
                args+=(--frontend="$HOST,$TLS_PORT" --backend="$HOST,$UPSTREAM_PORT"
                       --tls-min-proto-version=TLSv1.2 "$KEY" "$CERT")
            else
                args+=(--frontend="$HOST,$H2C_PORT;no-tls" --backend="$HOST,$ECHO_PORT;;proto=h2")
            fi
            taskset -c "$PROXY_CORE" nghttpx "${args[@]}" >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
        haproxy)
            write_haproxy_config "$dir/haproxy.cfg" "$kind"
            taskset -c "$PROXY_CORE" haproxy -db -f "$dir/haproxy.cfg" >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
        nginx)
            write_nginx_proxy_config "$dir" "$kind"
            taskset -c "$PROXY_CORE" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
                >"$dir/stdout.log" 2>&1 </dev/null &
            ;;
    esac
    PROXY_PID=$!
    STARTED_PIDS+=("$PROXY_PID")
}

# --------------------------------------------------------------------------
# Sanity checks (one request through the proxy before measuring)
# --------------------------------------------------------------------------
# Prints an error text on failure.
sanity_check() {
    local scen=$1 port=$2 out
    case $scen in
        tls-h2)
            out=$(timeout 10 nghttp -v "https://$HOST:$port/" 2>&1) || true
            if [[ $out != *"negotiated protocol: h2"* ]]; then echo "ALPN h2 not negotiated: $(grep -m1 -iE 'error|fail' <<<"$out" | cut -c1-80)"; return 1; fi
            if [[ $out != *":status: 200"* || $out != *"hello from upstream"* ]]; then echo "GET / over h2 did not return the upstream body: $(grep -m1 ':status' <<<"$out" | cut -c1-60)"; return 1; fi
            ;;
        handshake)
            out=$(printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$HOST" |
                timeout 10 openssl s_client -connect "$HOST:$port" -tls1_2 -quiet 2>/dev/null) || true
            if [[ $out != "HTTP/1."?" 200"* || $out != *"hello from upstream"* ]]; then echo "TLS 1.2 HTTP/1.0 GET / did not return the upstream body: '$(head -n1 <<<"$out" | tr -d '\r|' | cut -c1-40)'"; return 1; fi
            ;;
        grpc-unary|grpc-unary-java)
            out=$(timeout 15 "$ECHO_CLIENT" -addr "$HOST:$port" -scenario unary -timeout 5s 2>&1) || true
            if [[ $out != *"RESULT unary PASS"* ]]; then echo "gRPC unary through the proxy failed: $(grep -m1 RESULT <<<"$out" | cut -c1-120)"; return 1; fi
            ;;
        grpc-bidi)
            out=$(timeout 15 "$ECHO_CLIENT" -addr "$HOST:$port" -scenario bidi -timeout 5s 2>&1) || true
            if [[ $out != *"RESULT bidi PASS"* ]]; then echo "gRPC bidi through the proxy failed: $(grep -m1 RESULT <<<"$out" | cut -c1-120)"; return 1; fi
            ;;
    esac
}

# --------------------------------------------------------------------------
# Load runs. run_load SCEN PORT DIR PHASE(warmup|measure) SECONDS: starts the
# load in the background, sets LOAD_PID. parse_load SCEN DIR sets P_RPS P_P50
# P_P99 P_NOTE.
# --------------------------------------------------------------------------
H2LOAD_PARAMS="-t1 -c$CONNECTIONS -m$STREAMS"
S_TIME_PARAMS="-new -tls1_2 -www /"

# Pure-bash background group that we can wait for and kill (timeout on each client).
run_load() {
    local scen=$1 port=$2 dir=$3 phase=$4 secs=$5
    local out="$dir/$phase"
    case $scen in
        tls-h2)
            local -a extra=()
            [[ $phase == measure ]] && extra=(--log-file="$dir/h2load-requests.log")
            # shellcheck disable=SC2086  # H2LOAD_PARAMS is a list of flags
            timeout $((secs + 30)) taskset -c "$LOAD_CORE" h2load $H2LOAD_PARAMS -D "$secs" "${extra[@]}" \
                "https://$HOST:$port/" >"$out.txt" 2>&1 &
            ;;
        handshake)
            (
                date +%s.%N >"$out.start"
                i=0
                for ((i = 1; i <= HS_CLIENTS; i++)); do
                    # shellcheck disable=SC2086
                    timeout $((secs + 20)) taskset -c "$LOAD_CORE" openssl s_time -connect "$HOST:$port" \
                        $S_TIME_PARAMS -time "$secs" >"$out.$i.txt" 2>&1 &
                done
                wait
                date +%s.%N >"$out.end"
            ) &
            ;;
        grpc-unary|grpc-bidi)
            local rpc=${scen#grpc-}
            timeout $((secs + 40)) taskset -c "$LOAD_CORE" "$ECHO_CLIENT" -addr "$HOST:$port" -load \
                -duration "${secs}s" -concurrency "$GRPC_CONCURRENCY" -conns "$GRPC_CONNS" -rpc "$rpc" \
                >"$out.txt" 2>&1 &
            ;;
        grpc-unary-java)
            timeout $((secs + 60)) taskset -c "$LOAD_CORE" "$JAVA_CLIENT" -addr "$HOST:$port" -load \
                -duration "${secs}s" -concurrency "$GRPC_CONCURRENCY" -conns "$GRPC_CONNS" -rpc unary \
                -warmup "${WARMUP}s" >"$out.txt" 2>&1 &
            ;;
    esac
    LOAD_PID=$!
    STARTED_PIDS+=("$LOAD_PID")
}

# Sum of utime+stime (clock ticks, all threads) of PID and its descendants.
cpu_ticks() {
    local total=0 p st
    for p in "$1" $(descendants "$1"); do
        { read -r st <"/proc/$p/stat"; } 2>/dev/null || continue
        st=${st##*) }
        # fields after "(comm) ": state=1 ... utime=12 stime=13
        total=$((total + $(awk '{print $12 + $13}' <<<"$st")))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

fmt_ms() { awk -v v="$1" 'BEGIN { printf "%.3f ms", v }'; }

parse_load() {
    local scen=$1 dir=$2
    local f="$dir/measure"
    P_RPS=""; P_P50=""; P_P99=""; P_NOTE=""; P_XNOTE=""   # XNOTE: per-round detail, median round only
    case $scen in
        tls-h2)
            local rps succ failed errored timeouts s2xx total proto
            rps=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$f.txt")
            read -r total succ failed errored timeouts < <(awk '/^requests:/ {print $2, $8, $10, $12, $14}' "$f.txt") || true
            s2xx=$(awk '/^status codes:/ {print $3}' "$f.txt")
            proto=$(sed -n 's/^Application protocol: *//p' "$f.txt" | head -n1)
            if [[ -z $rps || ${succ:-0} == 0 ]]; then
                P_NOTE="h2load: no successful requests: $(grep -m1 -iE 'error|fail|requests:' "$f.txt" | cut -c1-100)"
                return 1
            fi
            P_RPS=$(printf '%.0f' "$rps")
            if [[ -s $dir/h2load-requests.log ]]; then
                # columns: start (us since epoch), status, microseconds to end of response
                read -r P_P50 P_P99 < <(awk '$2 >= 200 && $2 < 300 {print $3}' "$dir/h2load-requests.log" | sort -n |
                    awk '{a[NR] = $1} END { if (NR == 0) { print "", ""; exit }
                         i50 = int(NR * 0.50 + 0.5); if (i50 < 1) i50 = 1
                         i99 = int(NR * 0.99 + 0.5); if (i99 < 1) i99 = 1
                         printf "%.3f %.3f\n", a[i50] / 1000, a[i99] / 1000 }') || true
                [[ -n $P_P50 ]] && P_P50="$P_P50 ms" && P_P99="$P_P99 ms"
            fi
            [[ $proto == h2 ]] || P_NOTE+="ALPN: '${proto:-none}'; "
            P_NOTE+="$(sed -n 's/^TLS Protocol: *//p' "$f.txt" | head -n1) $(sed -n 's/^Cipher: *//p' "$f.txt" | head -n1); "
            if ((${failed:-0} + ${errored:-0} + ${timeouts:-0} > 0)); then
                P_NOTE+="$failed failed, $errored errored, $timeouts timeout of $total; "
            fi
            if [[ -n $s2xx && -n $succ && $s2xx != "$succ" ]]; then P_NOTE+="$((succ - s2xx)) non-2xx; "; fi
            ;;
        handshake)
            local n=0 errs=0 bytes_bad=0 start end i c b
            start=$(cat "$f.start" 2>/dev/null) || start=""
            end=$(cat "$f.end" 2>/dev/null) || end=""
            for ((i = 1; i <= HS_CLIENTS; i++)); do
                [[ -f $f.$i.txt ]] || continue
                c=$(awk '/connections in .* real seconds/ {print $1}' "$f.$i.txt")
                b=$(awk '/connections in .* real seconds/ {print $(NF-3)}' "$f.$i.txt")
                n=$((n + ${c:-0}))
                if [[ -n $c && ${b:-0} == 0 ]]; then bytes_bad=$((bytes_bad + 1)); fi
                grep -q ERROR "$f.$i.txt" && errs=$((errs + 1))
            done
            if ((n == 0)) || [[ -z $start || -z $end ]]; then
                P_NOTE="openssl s_time made no connection: $(grep -h -m1 -iE 'error' "$f".*.txt 2>/dev/null | head -n1 | cut -c1-100)"
                return 1
            fi
            local wall
            wall=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.3f", e - s}')
            P_RPS=$(awk -v n="$n" -v w="$wall" 'BEGIN {printf "%.0f", n / w}')
            # s_time has no per-connection latency; Little's law gives the mean.
            P_XNOTE="mean ≈ $(awk -v c="$HS_CLIENTS" -v r="$P_RPS" 'BEGIN {printf "%.1f", c / r * 1000}') ms per connection (clients / rate)"
            ((errs == 0)) || P_NOTE+="$errs of $HS_CLIENTS s_time clients hit an error; "
            ((bytes_bad == 0)) || P_NOTE+="$bytes_bad clients read 0 bytes per connection (no HTTP response); "
            ;;
        grpc-*)
            local line rps p50 p99 errors first
            line=$(grep -m1 '^{.*"rps"' "$f.txt" || true)
            if [[ -z $line ]]; then
                P_NOTE="load client printed no result: $(grep -m1 -v '^$' "$f.txt" | cut -c1-120)"
                return 1
            fi
            jnum() { sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p" <<<"$line"; }
            rps=$(jnum rps); p50=$(jnum p50_ms); p99=$(jnum p99_ms); errors=$(jnum errors)
            first=$(sed -n 's/.*"first_error":"\([^"]*\)".*/\1/p' <<<"$line" | cut -c1-100)
            P_RPS=$(printf '%.0f' "${rps:-0}")
            [[ -n $p50 ]] && P_P50=$(fmt_ms "$p50")
            [[ -n $p99 ]] && P_P99=$(fmt_ms "$p99")
            if [[ -n $errors && $errors != 0 ]]; then P_NOTE+="$errors failed RPCs${first:+ (first: $first)}; "; fi
            ;;
    esac
    return 0
}

# --------------------------------------------------------------------------
# One measurement: scenario x proxy
# --------------------------------------------------------------------------
declare -A R_RPS R_P50 R_P99 R_RSS R_CPU R_PERCPU R_NOTE R_XNOTE R_STATUS   # keyed "scen|proxy"
declare -A R_LABEL FAIL_LOG

bench_one() {
    local scen=$1 name=$2 key="$1|$2"
    local kind port dir pid rc
    kind=$(scenario_kind "$scen"); port=$(scenario_port "$scen")
    dir="$TMP/$scen/$name.r$round"
    mkdir -p "$dir"
    R_LABEL[$name]=$(proxy_label "$name")
    R_RPS[$key]=""; R_P50[$key]=""; R_P99[$key]=""; R_RSS[$key]=""; R_NOTE[$key]=""; R_STATUS[$key]=""
    R_CPU[$key]=""; R_PERCPU[$key]=""; R_XNOTE[$key]=""

    if [[ $scen == grpc-* && -n $GRPC_SKIP ]]; then
        R_STATUS[$key]="skipped"; R_NOTE[$key]=$GRPC_SKIP; return 0
    fi
    if [[ $scen == grpc-unary-java && ! -x $JAVA_CLIENT ]]; then
        R_STATUS[$key]="skipped"; R_NOTE[$key]="$JAVA_CLIENT not built"; return 0
    fi
    if [[ $scen == tls-h2 ]] && ! command -v h2load >/dev/null 2>&1; then
        R_STATUS[$key]="skipped"; R_NOTE[$key]="h2load (nghttp2-client) not installed"; return 0
    fi

    if [[ $name == direct ]]; then
        port=$ECHO_PORT; pid=$ECHO_PID
    else
        if ! proxy_available "$name"; then
            R_STATUS[$key]="skipped"; R_NOTE[$key]="not installed"
            if [[ $name == pilotfish ]]; then R_STATUS[$key]="failed to start"; R_NOTE[$key]="$PILOTFISH not found (build it first)"; fi
            log "$scen/$name: ${R_NOTE[$key]}"
            return 0
        fi
        log "$scen/$name: starting on core $PROXY_CORE"
        start_proxy "$name" "$kind" "$dir"
        pid=$PROXY_PID
        rc=0
        wait_until "$START_TIMEOUT" "$pid" port_open "$port" || rc=$?
        if ((rc == 0)) && [[ $name == pilotfish ]]; then
            wait_until "$START_TIMEOUT" "$pid" ready_200 || rc=$?
        fi
        if ((rc != 0)); then
            R_STATUS[$key]="failed to start"
            if ((rc == 2)); then R_NOTE[$key]="process exited during startup"; else R_NOTE[$key]="not ready within ${START_TIMEOUT}s"; fi
            log "$scen/$name: ${R_NOTE[$key]}; last log lines:"
            FAIL_LOG[$key]=$(tail -n 20 "$dir/stdout.log" "$dir/error.log" 2>/dev/null || true)
            # shellcheck disable=SC2001
            sed 's/^/    /' <<<"${FAIL_LOG[$key]}" >&2
            stop_tree "$pid"
            return 0
        fi
    fi

    local err
    if ! err=$(sanity_check "$scen" "$port"); then
        R_STATUS[$key]="bad response"; R_NOTE[$key]=$err
        log "$scen/$name: $err"
        FAIL_LOG[$key]=$(tail -n 20 "$dir/stdout.log" "$dir/error.log" 2>/dev/null || true)
        [[ $name == direct ]] || stop_tree "$pid"
        return 0
    fi

    if [[ $scen != grpc-unary-java ]]; then   # the Java client warms up inside its own JVM (-warmup)
        log "$scen/$name: warm-up ${WARMUP}s"
        run_load "$scen" "$port" "$dir" warmup "$WARMUP"
        local warm_pid=$LOAD_PID
        wait "$warm_pid" || log "$scen/$name: warm-up load exited non-zero"
        forget "$warm_pid"
    fi

    log "$scen/$name: measuring ${DURATION}s"
    local cpu0 cpu1 t0 t1
    cpu0=$(cpu_ticks "$pid"); t0=$(date +%s.%N)
    run_load "$scen" "$port" "$dir" measure "$DURATION"
    local load_pid=$LOAD_PID rss max_rss=0
    while alive "$load_pid"; do
        if alive "$pid"; then
            rss=$(rss_kb "$pid")
            if ((rss > max_rss)); then max_rss=$rss; fi
        fi
        sleep 0.5
    done
    rc=0; wait "$load_pid" || rc=$?
    forget "$load_pid"
    cpu1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)

    local alive_after=1
    alive "$pid" || alive_after=0
    if [[ $name != direct ]]; then
        if ((!alive_after)); then
            FAIL_LOG[$key]=$(tail -n 30 "$dir/stdout.log" "$dir/error.log" 2>/dev/null || true)
        fi
        stop_tree "$pid"
    fi

    if ! parse_load "$scen" "$dir"; then
        R_STATUS[$key]="load failed"
        R_NOTE[$key]=${P_NOTE%; }; ((rc == 0)) || R_NOTE[$key]+=" (exit $rc)"
        ((alive_after)) || R_NOTE[$key]+="; proxy died during run"
        log "$scen/$name: ${R_NOTE[$key]}"
        [[ -n ${FAIL_LOG[$key]:-} ]] || FAIL_LOG[$key]=$(tail -n 20 "$dir/stdout.log" "$dir/error.log" 2>/dev/null || true)
        return 0
    fi
    ((rc == 0)) || P_NOTE+="load tool exit code $rc; "
    ((alive_after)) || P_NOTE+="proxy died during run; "
    R_RPS[$key]=$P_RPS; R_P50[$key]=$P_P50; R_P99[$key]=$P_P99
    R_RSS[$key]=$(awk -v k="$max_rss" 'BEGIN {printf "%.1f", k / 1024}')
    # Over the load tool's own measuring window: -D/-duration seconds, except s_time (wall clock of all clients);
    # the proxy idles while a client starts up (JVM), so its CPU ticks all fall into that window.
    local secs=$DURATION
    [[ $scen == handshake ]] && secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    # Java: the proxy also serves the in-JVM warm-up; assume the same rate then (approximate).
    [[ $scen == grpc-unary-java ]] && secs=$((DURATION + WARMUP))
    R_CPU[$key]=$(awk -v c=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN {printf "%.0f", c / hz / s * 100}')
    R_PERCPU[$key]=$(awk -v r="$P_RPS" -v c=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v s="$secs" 'BEGIN {if (c > 0) printf "%.0f", r * s / (c / hz)}')
    R_NOTE[$key]=${P_NOTE%; }; R_XNOTE[$key]=$P_XNOTE
    log "$scen/$name: ${R_RPS[$key]}/s, CPU ${R_CPU[$key]}%, p50 ${R_P50[$key]:-–}, p99 ${R_P99[$key]:-–}, RSS ${R_RSS[$key]} MiB${R_XNOTE[$key]:+ (${R_XNOTE[$key]})}${R_NOTE[$key]:+ (${R_NOTE[$key]})}"
}

mkdir -p "$RESULTS_DIR"
declare -A A_RPS A_P50 A_P99 A_RSS A_CPU A_PERCPU A_XNOTE A_NOTE A_STATUS GIVE_UP   # keyed "scen|proxy#round"
rows_for() {  # proxies (plus the direct baseline) measured in a scenario
    case $1 in grpc-*) echo "direct $PROXIES" ;; *) echo "$PROXIES" ;; esac
}
for ((round = 1; round <= ROUNDS; round++)); do
    ((ROUNDS == 1)) || log "=== round $round/$ROUNDS"
    for scen in $SCENARIOS; do
        for p in $(rows_for "$scen"); do
            key="$scen|$p"
            [[ -z ${GIVE_UP[$key]:-} ]] || continue
            bench_one "$scen" "$p"
            k="$key#$round"
            A_RPS[$k]=${R_RPS[$key]}; A_P50[$k]=${R_P50[$key]}; A_P99[$k]=${R_P99[$key]}
            A_RSS[$k]=${R_RSS[$key]}; A_CPU[$k]=${R_CPU[$key]}; A_PERCPU[$k]=${R_PERCPU[$key]}; A_XNOTE[$k]=${R_XNOTE[$key]}; A_NOTE[$k]=${R_NOTE[$key]}; A_STATUS[$k]=${R_STATUS[$key]}
            case ${R_STATUS[$key]} in "failed to start"|skipped|"bad response") GIVE_UP[$key]=1 ;; esac
        done
    done
done

for scen in $SCENARIOS; do for p in $(rows_for "$scen"); do bench_aggregate "$scen|$p"; done; done

# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------
STAMP=$(date +%Y-%m-%d-%H%M)
CPU_MODEL=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=$(lscpu 2>/dev/null | awk -F': *' '/^Model name/ {print $2; exit}')
LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)

scenario_title() {
    case $1 in
        tls-h2) echo "HTTP/2 over TLS (ALPN h2) → HTTP/1.1 upstream" ;;
        handshake) echo "TLS handshakes: new connection per request" ;;
        grpc-unary) echo "gRPC unary (h2c → h2 upstream), Go client" ;;
        grpc-bidi) echo "gRPC bidi streaming (h2c → h2 upstream), Go client" ;;
        grpc-unary-java) echo "gRPC unary (h2c → h2 upstream), Java client" ;;
    esac
}
scenario_desc() {
    case $1 in
        tls-h2) cat <<EOF
\`taskset -c $LOAD_CORE h2load $H2LOAD_PARAMS -D $DURATION --log-file=… https://$HOST:$TLS_PORT/\` (after a ${WARMUP}s run).
Proxy terminates TLS (ALPN h2) and forwards over HTTP/1.1 keep-alive to nginx (\`return 200\`, $((${#BODY} + 1))-byte body).
Unit: requests/s. p50/p99 computed from h2load's per-request log (\`--log-file\`: time to end of response, 2xx only).
EOF
            ;;
        handshake) cat <<EOF
$HS_CLIENTS parallel \`taskset -c $LOAD_CORE openssl s_time -connect $HOST:$TLS_PORT $S_TIME_PARAMS -time $DURATION\`:
every connection is a full TLS 1.2 handshake (no session resumption; $TLS_KEY server key, ECDHE) followed by one
HTTP/1.0 \`GET /\` forwarded to the upstream, then close. Unit: handshakes (= connections = requests) per second of wall time.
s_time reports no per-connection latency, hence no p50/p99; the notes give the mean from Little's law.
(h2load is not used here: it resumes TLS sessions when it reconnects.)
EOF
            ;;
        grpc-unary|grpc-bidi) cat <<EOF
\`taskset -c $LOAD_CORE echo-client -addr $HOST:$H2C_PORT -load -duration ${DURATION}s -concurrency $GRPC_CONCURRENCY -conns $GRPC_CONNS -rpc ${1#grpc-}\`
(grpc-go; after a ${WARMUP}s run) → proxy (h2c prior knowledge) → Go \`echo-server\` over h2c (core $LOAD_CORE).
Unit: $( [[ $1 == grpc-bidi ]] && echo "messages/s (ping-pong round trips on $GRPC_CONCURRENCY long-lived streams)" || echo "RPCs/s"). p50/p99 from the client. The *direct* row has no proxy (upper bound for the client + server on core $LOAD_CORE).
EOF
            ;;
        grpc-unary-java) cat <<EOF
\`taskset -c $LOAD_CORE java-client -addr $HOST:$H2C_PORT -load -duration ${DURATION}s -concurrency $GRPC_CONCURRENCY -conns $GRPC_CONNS -rpc unary -warmup ${WARMUP}s\`
(grpc-java/Netty 1.41, a second HTTP/2 stack, C1 only; the ${WARMUP}s warm-up runs inside the measured JVM). Unit: RPCs/s.
About half the Go client's rate on the same core: use it to cross-check latency and correctness under load.
CPU columns are approximate here (the proxy's CPU over warm-up + run, assuming a steady rate).
EOF
            ;;
    esac
}

report() {
    cat <<EOF
# pilotfish HTTP/2 / TLS / gRPC proxy benchmark — $(date '+%Y-%m-%d %H:%M %Z')

- host: \`nproc\` = $NCPU, CPU: ${CPU_MODEL:-unknown}, kernel: $(uname -r), load avg before report: $LOADAVG
- pinning: proxy on core $PROXY_CORE (single worker/thread: pilotfish \`--concurrency 1\`, nghttpx \`--workers=1\`,
  haproxy \`nbthread 1\`, nginx \`worker_processes 1\`); load generators and upstreams on core $LOAD_CORE
- tools: $(h2load --version 2>/dev/null | head -n1), $(openssl version 2>/dev/null), nginx $(nginx -v 2>&1 | sed -n 's|.*nginx/||p') (upstream),
  $(go version 2>/dev/null | awk '{print $3}' || true) echo-client/echo-server (grpc-go), $(java -version 2>&1 | head -n1 || true)
- pilotfish: \`$PILOTFISH\` ($(stat -c '%y' "$PILOTFISH" 2>/dev/null | cut -d. -f1 || echo missing)), git $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -n $(git -C "$REPO_DIR" status --porcelain --untracked-files=no 2>/dev/null) ]] && echo ' (dirty tree)')
- TLS: throwaway $TLS_KEY server certificate generated per run; proxies allow TLS 1.2 and 1.3
- RSS: peak VmRSS summed over the proxy's processes, sampled every 0.5 s during the measured run
- proxy CPU %: utime+stime of the proxy's processes over the measured run (100 = core $PROXY_CORE saturated);
  req per proxy CPU-s = requests / proxy CPU seconds, an efficiency figure that stays meaningful when core $LOAD_CORE,
  not the proxy, is the bottleneck (CPU < ~90 %)
- rounds: $ROUNDS (scenario by scenario, proxies round-robin, each proxy restarted per measurement; a row is that proxy's
  median round, RSS the max over rounds)

> The machine is shared and noisy (other engineers run tests on the same 2 cores): absolute numbers vary run to run.
> Compare the **ratio vs best peer** (pilotfish's rate divided by the best of nghttpx/haproxy/nginx measured in the
> same run), not raw numbers across runs. When every proxy lands near the same rate, core $LOAD_CORE (client + upstream)
> is the limit, not the proxy.
EOF
    local scen p key rps best best_name ratio
    for scen in $SCENARIOS; do
        best=0; best_name=""
        for p in $PROXIES; do
            [[ $p == pilotfish ]] && continue
            rps=${R_RPS["$scen|$p"]:-}
            if [[ -n $rps ]] && ((rps > best)); then best=$rps; best_name=$p; fi
        done
        printf '\n## %s\n\n' "$(scenario_title "$scen")"
        scenario_desc "$scen"
        printf '\nBest peer: %s.\n\n' "${best_name:-none measured}"
        echo "| proxy | req/s (1 core) | ratio vs best peer | p50 | p99 | RSS MiB | proxy CPU % | req per proxy CPU-s | notes |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
        for p in $(rows_for "$scen"); do
            key="$scen|$p"
            rps=${R_RPS[$key]:-}
            if [[ -z $rps ]]; then
                printf '| %s | %s | – | – | – | – | – | – | %s |\n' "${R_LABEL[$p]:-$p}" "${R_STATUS[$key]:-failed}" "${R_NOTE[$key]:-}"
                continue
            fi
            if ((best > 0)) && [[ $p != direct ]]; then
                ratio=$(awk -v a="$rps" -v b="$best" 'BEGIN {printf "%.2f", a / b}')
            else
                ratio="–"
            fi
            if [[ $p == direct ]]; then R_RSS[$key]="–"; R_CPU[$key]="–"; R_PERCPU[$key]="–"; fi
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${R_LABEL[$p]:-$p}" "$rps" "$ratio" \
                "${R_P50[$key]:-–}" "${R_P99[$key]:-–}" "${R_RSS[$key]:-–}" "${R_CPU[$key]:-–}" "${R_PERCPU[$key]:-–}" "${R_NOTE[$key]:-}"
        done
    done
    local any=0
    for key in "${!FAIL_LOG[@]}"; do
        [[ $key == *"|pilotfish" && -n ${FAIL_LOG[$key]} ]] || continue
        if ((!any)); then printf '\n## pilotfish failures (log excerpts)\n'; any=1; fi
        # shellcheck disable=SC2016  # literal backticks (markdown fence)
        printf '\n%s:\n\n```\n%s\n```\n' "${key%|*}" "${FAIL_LOG[$key]}"
    done
}

OUT="$RESULTS_DIR/h2-$STAMP.md"
report >"$OUT"
cp "$OUT" "$RESULTS_DIR/latest-h2.md"
echo
cat "$OUT"
echo
log "wrote $OUT and $RESULTS_DIR/latest-h2.md"
