#!/bin/sh
# Init container of docker/kubernetes/transparent-interception.yaml: the
# iptables pattern of service meshes.  NOT WORKING YET with pilotfish (see
# README.md): the outbound half needs the original_dst listener filter.
#   INBOUND_PORT   sidecar inbound listener   (default 15006)
#   OUTBOUND_PORT  sidecar outbound listener  (default 15001)
#   PROXY_UID      uid the sidecar runs as: its own traffic is not redirected (10001)
#   EXCLUDE_PORTS  inbound ports left alone, comma-separated (default 9901 = admin)
set -eu
IN=${INBOUND_PORT:-15006}; OUTP=${OUTBOUND_PORT:-15001}
UID_=${PROXY_UID:-10001}; EXCL=${EXCLUDE_PORTS:-9901}

iptables -t nat -N PILOTFISH_INBOUND
iptables -t nat -N PILOTFISH_OUTBOUND
# Inbound: every TCP connection to the pod goes to the sidecar's inbound listener.
for p in $(echo "$EXCL" | tr ',' ' '); do
  iptables -t nat -A PILOTFISH_INBOUND -p tcp --dport "$p" -j RETURN
done
iptables -t nat -A PILOTFISH_INBOUND -p tcp -j REDIRECT --to-ports "$IN"
iptables -t nat -A PREROUTING -p tcp -j PILOTFISH_INBOUND
# Outbound: the app's connections go to the sidecar's outbound listener, except
# the sidecar's own (by uid) and loopback.
iptables -t nat -A PILOTFISH_OUTBOUND -m owner --uid-owner "$UID_" -j RETURN
iptables -t nat -A PILOTFISH_OUTBOUND -d 127.0.0.0/8 -j RETURN
iptables -t nat -A PILOTFISH_OUTBOUND -p tcp -j REDIRECT --to-ports "$OUTP"
iptables -t nat -A OUTPUT -p tcp -j PILOTFISH_OUTBOUND
iptables -t nat -S
