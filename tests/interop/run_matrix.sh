#!/usr/bin/env bash
# gRPC / HTTP/2 interop matrix: every client x scenario against the echo servers, either
# DIRECTLY (no proxy: proves the clients and servers agree, so that later failures are the
# proxy's) or THROUGH a proxy.
#
#   tests/interop/run_matrix.sh                       # direct (default)
#   PILOTFISH=build/pilotfish tests/interop/run_matrix.sh
#         renders envoy/h2c.yaml.tmpl and envoy/tls.yaml.tmpl, starts pilotfish on each,
#         and runs the matrix through it
#   PROXY_H2C_ADDR=127.0.0.1:10000 PROXY_TLS_ADDR=127.0.0.1:10443 tests/interop/run_matrix.sh
#         an already running proxy (pilotfish, envoy, nghttpx, ...): its cleartext h2c
#         listener and/or its TLS (ALPN h2) listener must route /pilotfish.interop.Echo/* and
#         /grpc.health.v1.Health/* to 127.0.0.1:$ECHO_GRPC_PORT (default 50051) and
#         everything else to 127.0.0.1:$ECHO_HTTP_PORT (default 50061), both over h2c;
#         the TLS listener's certificate must verify against $PROXY_CA as $PROXY_TLS_NAME.
#
# Other knobs (environment):
#   SERVERS="go py"     upstream echo server implementations (py has no HTTP handler)
#   CLIENTS="go java py go-h2 java-h2"   go/java/py: gRPC clients; go-h2: x/net/http2
#                       GET/POST + trailers; java-h2: java.net.http (TLS only)
#   MODES               direct: "h2c tls mtls"; proxy: "h2c tls" (only those with an address)
#   SCENARIOS=all       or a comma list (see the clients' -h)
#   PROXY_TLS_NAME=localhost  PROXY_CA=<pki>/ca.crt
#   BUILD_DIR=build-interop   NO_BUILD=1 (skip tests/interop/build.sh)
#   RESULTS=file        also write the matrix as TSV there
# Exit 0 only if every cell passed. Ends with "N passed, N failed".
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export BUILD_DIR=${BUILD_DIR:-$REPO/build-interop}
BIN=$BUILD_DIR/bin
if [ -z "${NO_BUILD:-}" ]; then
    "$HERE/build.sh" || { echo "run_matrix: build failed" >&2; exit 1; }
fi
PKI=$BUILD_DIR/pki
"$HERE/certs.sh" "$PKI" || exit 1

SERVERS=${SERVERS:-go py}
CLIENTS=${CLIENTS:-go java py go-h2 java-h2}
SCENARIOS=${SCENARIOS:-all}
PROXY_TLS_NAME=${PROXY_TLS_NAME:-localhost}
PROXY_CA=${PROXY_CA:-$PKI/ca.crt}
WORK=$(mktemp -d /tmp/pf-interop.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The integration harness's free_port: ports reserved across parallel test programs.
free_port() { /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import pftest; print(pftest.free_port())' "$REPO/tests/integration"; }
wait_port() { # port [seconds [pid: give up when it exits]]
    local i
    for i in $(seq 1 $((${2:-10} * 20))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
        sleep 0.05
    done
    return 1
}
start() { # logname cmd...: start in background, remember the pid
    local log=$WORK/$1.log; shift
    "$@" >"$log" 2>&1 &
    PIDS+=($!)
}
stop_all_servers() {
    local p
    for p in "${SERVER_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    SERVER_PIDS=()
}

ROWS=()
PASS=0; FAIL=0
row() { # server mode client scenario result detail
    ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4"$'\t'"$5"$'\t'"$6")
    if [ "$5" = PASS ]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
    printf '%-4s %-6s %-8s %-14s %-4s %s\n' "$1" "$2" "$3" "$4" "$5" "$6"
}

# run_client server mode client expected-names... -- cmd...
# Runs cmd, turns its "RESULT name PASS|FAIL detail" lines into rows; an expected name
# without a line (crash, hang) becomes a FAIL with the tail of its output.
run_client() {
    local server=$1 mode=$2 client=$3; shift 3
    local names=()
    while [ "$1" != -- ]; do names+=("$1"); shift; done; shift
    local out=$WORK/out.txt rc
    if [ -n "${PROXY_DEAD[$mode]:-}" ]; then
        for n in "${names[@]}"; do row "$server" "$mode" "$client" "$n" FAIL "${PROXY_DEAD[$mode]}"; done
        return
    fi
    timeout 180 "$@" >"$out" 2>&1; rc=$?
    local n line res detail
    for n in "${names[@]}"; do
        line=$(grep -m1 "^RESULT $n " "$out")
        if [ -n "$line" ]; then
            res=$(echo "$line" | cut -d' ' -f3)
            detail=$(echo "$line" | cut -d' ' -f4-)
        else
            res=FAIL
            detail="no result (exit $rc): $(grep -v '^RESULT' "$out" | tail -3 | tr '\n' ' ' | cut -c1-300)"
        fi
        row "$server" "$mode" "$client" "$n" "$res" "$detail"
    done
}

GRPC_SCEN=$SCENARIOS
if [ "$GRPC_SCEN" = all ]; then
    GRPC_SCEN=unary,server_stream,client_stream,bidi,error_status,stream_error,deadline,large_payload,metadata,health
fi
IFS=, read -ra GRPC_NAMES <<<"$GRPC_SCEN"

# ------------------------------------------------------------------ topology
PROXY=
declare -A PROXY_DEAD=()
if [ -n "${PILOTFISH:-}" ]; then
    PROXY=pilotfish
    ECHO_GRPC_PORT=${ECHO_GRPC_PORT:-$(free_port)}
    ECHO_HTTP_PORT=${ECHO_HTTP_PORT:-$(free_port)}
    PF_ERR=()
    for t in h2c tls; do
        lp=$(free_port); ap=$(free_port)
        sed -e "s/@LISTEN_PORT@/$lp/" -e "s/@ADMIN_PORT@/$ap/" -e "s/@ECHO_GRPC_PORT@/$ECHO_GRPC_PORT/" \
            -e "s/@ECHO_HTTP_PORT@/$ECHO_HTTP_PORT/" -e "s|@CERT_DIR@|$PKI|" \
            "$HERE/envoy/$t.yaml.tmpl" >"$WORK/pilotfish-$t.yaml"
        start "pilotfish-$t" "$PILOTFISH" -c "$WORK/pilotfish-$t.yaml" --concurrency 2 -l info
        if wait_port "$lp" 5 "${PIDS[-1]}"; then
            [ $t = h2c ] && PROXY_H2C_ADDR=127.0.0.1:$lp || PROXY_TLS_ADDR=127.0.0.1:$lp
        else
            # Keep the mode in the matrix so that it shows up as failing, without running.
            PROXY_DEAD[$t]="pilotfish did not start: $(tail -1 "$WORK/pilotfish-$t.log" | sed "s|$WORK/||" | cut -c1-200)"
            echo "run_matrix: ${PROXY_DEAD[$t]}" >&2
            [ $t = h2c ] && PROXY_H2C_ADDR=127.0.0.1:$lp || PROXY_TLS_ADDR=127.0.0.1:$lp
        fi
    done
    MODES=${MODES:-h2c tls}
elif [ -n "${PROXY_H2C_ADDR:-}${PROXY_TLS_ADDR:-}" ]; then
    PROXY=external
    ECHO_GRPC_PORT=${ECHO_GRPC_PORT:-50051}
    ECHO_HTTP_PORT=${ECHO_HTTP_PORT:-50061}
    MODES=${MODES:-$([ -n "${PROXY_H2C_ADDR:-}" ] && echo h2c) $([ -n "${PROXY_TLS_ADDR:-}" ] && echo tls)}
else
    MODES=${MODES:-h2c tls mtls}
fi
echo "run_matrix: ${PROXY:-direct (no proxy)}; servers: $SERVERS; modes: $MODES; clients: $CLIENTS" >&2

SERVER_PIDS=()
start_server() { # kind name addr http-addr tls-args...
    local kind=$1 name=$2 addr=$3 haddr=$4; shift 4
    if [ "$kind" = go ]; then
        start "server-$name" "$BIN/echo-server" -name "$name" -addr "$addr" ${haddr:+-http-addr "$haddr"} "$@"
    else
        start "server-$name" "$BIN/py-server" -name "$name" -addr "$addr" "$@"
    fi
    SERVER_PIDS+=("${PIDS[-1]}")
    wait_port "${addr##*:}" 15 "${PIDS[-1]}" || echo "run_matrix: $kind server $name did not start: $(tail -2 "$WORK/server-$name.log")" >&2
}

TLS_SRV=(-tls-cert "$PKI/server.crt" -tls-key "$PKI/server.key")
for server in $SERVERS; do
    declare -A GADDR=() HURL=()
    if [ -n "$PROXY" ]; then
        start_server "$server" "$server" "127.0.0.1:$ECHO_GRPC_PORT" "$([ "$server" = go ] && echo "127.0.0.1:$ECHO_HTTP_PORT")"
        GADDR[h2c]=${PROXY_H2C_ADDR:-}; GADDR[tls]=${PROXY_TLS_ADDR:-}
        HURL[h2c]=http://${PROXY_H2C_ADDR:-}/echo
        HURL[tls]=https://$PROXY_TLS_NAME:${PROXY_TLS_ADDR##*:}/echo
        CA=$PROXY_CA; NAME=$PROXY_TLS_NAME
    else
        for mode in $MODES; do
            g=$(free_port); h=$(free_port)
            extra=()
            [ "$mode" = tls ] && extra=("${TLS_SRV[@]}")
            [ "$mode" = mtls ] && extra=("${TLS_SRV[@]}" -client-ca "$PKI/ca.crt")
            start_server "$server" "$server-$mode" "127.0.0.1:$g" "$([ "$server" = go ] && echo "127.0.0.1:$h")" "${extra[@]}"
            GADDR[$mode]=127.0.0.1:$g
            [ "$mode" = h2c ] && HURL[$mode]=http://127.0.0.1:$h/echo || HURL[$mode]=https://localhost:$h/echo
        done
        CA=$PKI/ca.crt; NAME=localhost
    fi
    for mode in $MODES; do
        targs=()
        case $mode in
            tls)  targs=(-tls -ca "$CA" -server-name "$NAME") ;;
            mtls) targs=(-tls -ca "$CA" -server-name "$NAME" -tls-cert "$PKI/client.crt" -tls-key "$PKI/client.key") ;;
        esac
        for client in $CLIENTS; do
            case $client in
                go)   run_client "$server" "$mode" go "${GRPC_NAMES[@]}" -- "$BIN/echo-client" -addr "${GADDR[$mode]}" "${targs[@]}" -scenario "$GRPC_SCEN" ;;
                java) run_client "$server" "$mode" java "${GRPC_NAMES[@]}" -- "$BIN/java-client" -addr "${GADDR[$mode]}" "${targs[@]}" -scenario "$GRPC_SCEN" ;;
                py)   run_client "$server" "$mode" py "${GRPC_NAMES[@]}" -- "$BIN/py-client" -addr "${GADDR[$mode]}" "${targs[@]}" -scenario "$GRPC_SCEN" ;;
                go-h2)
                    # Plain HTTP/2 needs the Go server's HTTP handler; mTLS is a gRPC-only mode.
                    [ "$server" = go ] && [ "$mode" != mtls ] || continue
                    run_client "$server" "$mode" go-h2 h2_get h2_post -- "$BIN/h2client" -url "${HURL[$mode]}" -ca "$CA" ;;
                java-h2)
                    [ "$server" = go ] && [ "$mode" = tls ] || continue
                    run_client "$server" "$mode" java-h2 java_h2_get java_h2_post -- "$BIN/java-h2check" -url "${HURL[$mode]}" -ca "$CA" ;;
                *) echo "run_matrix: unknown client $client" >&2 ;;
            esac
        done
    done
    stop_all_servers
    unset GADDR HURL
done

if [ -n "${RESULTS:-}" ]; then
    { printf 'server\tmode\tclient\tscenario\tresult\tdetail\n'; printf '%s\n' "${ROWS[@]}"; } >"$RESULTS"
fi

# Compact matrix: one line per (server, mode, client), one column per scenario.
echo
echo "=== interop matrix (${PROXY:-direct}) ==="
/usr/bin/python3 - "${ROWS[@]}" <<'PY'
import sys
rows = [r.split("\t") for r in sys.argv[1:]]
cols, seen, cells = [], set(), {}
for s, m, c, sc, res, _ in rows:
    if sc not in cols: cols.append(sc)
    key = (s, m, c)
    if key not in seen: seen.add(key); cells.setdefault("order", []).append(key)
    cells[key + (sc,)] = "ok" if res == "PASS" else "FAIL"
print("%-4s %-5s %-8s " % ("srv", "mode", "client") + " ".join(cols))
for key in cells.get("order", []):
    print("%-4s %-5s %-8s " % key + " ".join(cells.get(key + (c,), "-").ljust(len(c)) for c in cols))
PY
echo "interop: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
