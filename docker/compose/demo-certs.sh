#!/bin/sh
# DEMO ONLY: makes a throwaway CA and a certificate for the compose demo's
# edge (names edge, localhost, 127.0.0.1, ::1), valid 30 days.  Never use
# these for anything real: the CA key sits next to the certificates.
#
#   docker/compose/demo-certs.sh DIR [OWNER_UID]
#
# Writes DIR/ca.crt (what clients trust), DIR/edge.crt and DIR/edge.key (what
# the edge serves).  Does nothing when DIR/edge.crt already exists.  compose.yaml
# runs it as the `demo-certs` init service (the pilotfish image has openssl);
# it runs as well on any host with openssl.  OWNER_UID: chown the files to this
# uid (the image runs pilotfish as 10001).
set -eu
DIR=${1:?usage: demo-certs.sh DIR [OWNER_UID]}
mkdir -p "$DIR"
if [ -s "$DIR/edge.crt" ] && [ -s "$DIR/edge.key" ] && [ -s "$DIR/ca.crt" ]; then
  echo "demo-certs: $DIR already has the demo certificates"; exit 0
fi
umask 077
cd "$DIR"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/O=pilotfish demo (DO NOT TRUST)/CN=pilotfish demo CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
  -keyout ca.key -out ca.crt 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/O=pilotfish demo (DO NOT TRUST)/CN=edge" -keyout edge.key -out edge.csr 2>/dev/null
printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:edge,DNS:localhost,IP:127.0.0.1,IP:::1" > edge.ext
openssl x509 -req -in edge.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
  -extfile edge.ext -out edge.crt 2>/dev/null
rm -f edge.csr edge.ext ca.srl
chmod 0644 ca.crt edge.crt
chmod 0600 ca.key edge.key
[ -z "${2:-}" ] || chown "$2" ca.crt edge.crt edge.key
echo "demo-certs: wrote $DIR/ca.crt, edge.crt, edge.key (demo only)"
