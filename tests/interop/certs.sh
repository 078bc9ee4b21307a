#!/usr/bin/env bash
# Generates throwaway test PKI into DIR (never commit these):
#   ca.crt ca.key          self-signed CA
#   server.crt server.key  SAN DNS:localhost, IP:127.0.0.1 (serverAuth)
#   client.crt client.key  CN=pilotfish-interop-client (clientAuth), for mTLS
# Keys are PKCS#8 PEM (what Go, grpc-java/netty-tcnative and grpcio all accept).
#   tests/interop/certs.sh DIR [--force]
set -euo pipefail
D=${1:?usage: certs.sh DIR [--force]}
mkdir -p "$D"
if [ -f "$D/server.crt" ] && [ -f "$D/client.crt" ] && [ "${2:-}" != --force ]; then exit 0; fi
cd "$D"
umask 077
days=30
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days $days -keyout ca.key -out ca.crt \
    -subj "/CN=pilotfish interop test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
issue() { # name subject extensions
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days $days -sha256 \
        -extfile "$1.ext" -out "$1.crt" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
issue server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
issue client "/CN=pilotfish-interop-client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
rm -f ca.srl
chmod 644 ./*.crt
echo "certs.sh: test PKI in $(pwd)" >&2
