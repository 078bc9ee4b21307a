#!/usr/bin/env bash
# Builds pilotfish's gRPC / HTTP/2 interop and load clients and servers, offline, from
# Debian 12 packages (see ../../../shared/CLIENTS.md for the why of each step).
#
#   tests/interop/build.sh            # installs missing packages, builds into build-interop/
#   BUILD_DIR=/tmp/x tests/interop/build.sh
#   NO_APT=1 tests/interop/build.sh   # never call apt-get (fail if something is missing)
#
# Idempotent: each part (Go, Java, Python stubs) is rebuilt only when its inputs changed.
# Output ($BUILD_DIR/bin):
#   echo-server   Go gRPC echo server (+ health, + optional HTTP/2 echo handler)
#   echo-client   Go gRPC scenario / load client
#   h2client      Go golang.org/x/net/http2 client (h2c prior knowledge and TLS)
#   java-client   Java (grpc-java/Netty) scenario / load client
#   java-h2check  Java java.net.http.HttpClient HTTP/2-over-TLS GET
#   py-server     Python grpcio echo server      py-client   Python grpcio scenario client
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
B=${BUILD_DIR:-$REPO/build-interop}
mkdir -p "$B/bin"
B=$(cd "$B" && pwd)
t_start=$(date +%s.%N)
log() { echo "interop-build: $*" >&2; }

# ---------------------------------------------------------------- packages
PKGS=(golang-go golang-golang-x-net-dev golang-google-grpc-dev golang-google-protobuf-dev
      golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler
      default-jdk-headless
      libgrpc-java libnetty-java libprotobuf-java libguava-java libperfmark-java
      protobuf-compiler-grpc-java-plugin libgeronimo-annotation-1.3-spec-java
      libnetty-tcnative-java libnetty-tcnative-jni
      python3-grpcio python3-protobuf python3-h2 openssl)
missing=()
for p in "${PKGS[@]}"; do
    # default-jdk-headless is satisfied by any JDK >= 11 already providing javac.
    if [ "$p" = default-jdk-headless ] && command -v javac >/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ -n "${NO_APT:-}" ]; then log "missing packages: ${missing[*]}"; exit 1; fi
    log "installing: ${missing[*]}"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        $SUDO apt-get update -q >/dev/null
        $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    }
fi

HEALTH_PROTO=/usr/share/gocode/src/google.golang.org/grpc/debian/missing-sources/grpc/grpc-proto/master/grpc/health/v1/health.proto
[ -f "$HEALTH_PROTO" ] || { log "no $HEALTH_PROTO (golang-google-grpc-dev)"; exit 1; }

# stamp NAME FILES...: true (and records the new hash) when FILES changed since last time.
changed() {
    local name=$1; shift
    local h; h=$( (sha256sum "$@"; echo "${BUILD_DIR:-}") | sha256sum | cut -d' ' -f1)
    if [ -f "$B/.stamp-$name" ] && [ "$(cat "$B/.stamp-$name")" = "$h" ]; then return 1; fi
    echo "$h" > "$B/.stamp-$name.new"
    return 0
}
done_stamp() { mv "$B/.stamp-$1.new" "$B/.stamp-$1"; }

PROTO=$HERE/proto/echo.proto
SELF=$HERE/build.sh

# ---------------------------------------------------------------- Go (GOPATH mode)
build_go() {
    local G=$B/gopath
    local P=$G/src/pilotfish/interop
    if changed go "$PROTO" "$SELF" $(find "$HERE/go" -name '*.go' | sort) ||
       [ ! -x "$B/bin/echo-server" ] || [ ! -x "$B/bin/echo-client" ] || [ ! -x "$B/bin/h2client" ]; then
        rm -rf "$P"; mkdir -p "$P/echopb"
        cp -r "$HERE/go/server" "$HERE/go/client" "$HERE/go/h2client" "$P/"
        protoc -I "$HERE/proto" --go_out=paths=source_relative:"$P/echopb" \
            --go-grpc_out=paths=source_relative:"$P/echopb" "$PROTO"
        (cd "$P" && GO111MODULE=off GOPATH="$G:/usr/share/gocode" GOFLAGS= GOCACHE="${GOCACHE:-$B/gocache}" \
            go build -o "$B/bin/" ./server ./client ./h2client)
        mv "$B/bin/server" "$B/bin/echo-server"; mv "$B/bin/client" "$B/bin/echo-client"
        [ -f "$B/.stamp-go.new" ] && done_stamp go
        log "go: built"
    fi
}

# ---------------------------------------------------------------- Java
JARS="grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub
      protobuf guava jsr305 netty-buffer netty-codec netty-codec-http netty-codec-http2
      netty-common netty-handler netty-resolver netty-transport perfmark-api netty-tcnative"
build_java() {
    local J=$B/java
    local CP=""
    for j in $JARS; do CP=$CP${CP:+:}/usr/share/java/$j.jar; done
    if changed java "$PROTO" "$HEALTH_PROTO" "$SELF" $(find "$HERE/java" -name '*.java' | sort) ||
       [ ! -f "$J/classes/pilotfish/interop/EchoClient.class" ]; then
        rm -rf "$J"; mkdir -p "$J/gen" "$J/classes" "$J/proto/grpc/health/v1" "$J/native"
        cp "$HEALTH_PROTO" "$J/proto/grpc/health/v1/"
        cp "$PROTO" "$J/proto/"
        protoc -I "$J/proto" --plugin=protoc-gen-grpc-java=/usr/bin/grpc_java_plugin \
            --java_out="$J/gen" --grpc-java_out="$J/gen" "$J/proto/echo.proto" "$J/proto/grpc/health/v1/health.proto"
        javac -nowarn -encoding UTF-8 -d "$J/classes" \
            -cp "$CP:/usr/share/java/geronimo-annotation-1.3-spec.jar" \
            $(find "$J/gen" "$HERE/java/src" -name '*.java') 2> >(grep -v '^Note:' >&2)
        # netty-tcnative loads "libnetty_tcnative.so" and refuses a symlink: copy it.
        cp /usr/lib/x86_64-linux-gnu/jni/libnetty-tcnative.so "$J/native/libnetty_tcnative.so"
        echo "$J/classes:$CP" > "$J/classpath"
        for pair in java-client:pilotfish.interop.EchoClient java-h2check:pilotfish.interop.H2Check; do
            cat > "$B/bin/${pair%%:*}" <<WRAP
#!/bin/sh
# C1 only: faster start, and on 2 cores also more RPCs/s in 5 s load runs than with C2
# compiling in the background. Override with JAVA_OPTS.
exec java \${JAVA_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1} -Djava.library.path="$J/native" -cp "$J/classes:$CP" ${pair#*:} "\$@"
WRAP
            chmod +x "$B/bin/${pair%%:*}"
        done
        [ -f "$B/.stamp-java.new" ] && done_stamp java
        log "java: built"
    fi
}

# ---------------------------------------------------------------- Python (/usr/bin/python3)
build_py() {
    local Y=$B/py
    if changed py "$PROTO" "$HEALTH_PROTO" "$SELF" $(find "$HERE/py" -name '*.py' | sort) ||
       [ ! -f "$Y/echo_pb2.py" ]; then
        rm -rf "$Y"; mkdir -p "$Y/proto"
        # health.proto is compiled as a top-level module: "grpc/health/v1/health_pb2"
        # would collide with the grpc package itself.
        cp "$HEALTH_PROTO" "$PROTO" "$Y/proto/"
        protoc -I "$Y/proto" --python_out="$Y" "$Y/proto/echo.proto" "$Y/proto/health.proto"
        for pair in py-server:echo_server.py py-client:echo_client.py; do
            cat > "$B/bin/${pair%%:*}" <<WRAP
#!/bin/sh
PYTHONPATH="$Y\${PYTHONPATH:+:\$PYTHONPATH}" exec /usr/bin/python3 "$HERE/py/${pair#*:}" "\$@"
WRAP
            chmod +x "$B/bin/${pair%%:*}"
        done
        [ -f "$B/.stamp-py.new" ] && done_stamp py
        log "py: built"
    fi
}

# Go and Java in parallel (CI has 2 cores); Python stubs are instant.
build_py
build_go & gp=$!
build_java & jp=$!
rc=0
wait $gp || { log "go build FAILED"; rc=1; }
wait $jp || { log "java build FAILED"; rc=1; }
[ $rc = 0 ] || exit $rc
log "ready in $B/bin ($(awk -v s="$t_start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')s)"
