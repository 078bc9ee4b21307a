#!/usr/bin/env bash
# Builds the .deb with CPack, installs it with apt into a clean debootstrap
# (minbase) bookworm chroot, and checks it there: files, Depends resolved by
# apt, postinst config, `pilotfish --version`, `--mode validate` of the shipped
# example, the systemd unit (systemd-analyze verify against the chroot), a real
# start inside the chroot probed with curl from the host (admin /ready and a
# request), SIGTERM -> exit 0, and purge.  Needs root.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { log "SKIP test-deb: needs root (debootstrap, chroot)"; exit 0; }
t0=$SECONDS

log "deb: configure + build + cpack"
cmake -S . -B "$PKG_OUT/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$PKG_OUT/build" -j"$(nproc)" --target pilotfish >/dev/null
rm -f "$PKG_OUT"/build/pilotfish_*.deb
(cd "$PKG_OUT/build" && cpack -G DEB >/dev/null)
DEB=$(ls "$PKG_OUT"/build/pilotfish_*.deb)
log "deb: $(basename "$DEB")  Depends: $(dpkg-deb -f "$DEB" Depends)"
dpkg-deb -f "$DEB" Depends | grep -q libuv1 || fail "Depends lacks libuv1"
[ "$(dpkg-deb -f "$DEB" Architecture)" = "$(dpkg --print-architecture)" ] || fail "wrong Architecture"
for f in ./usr/bin/pilotfish ./usr/share/man/man1/pilotfish.1 ./usr/share/pilotfish/examples/demo.yaml \
         ./usr/share/pilotfish/lua/README.md ./usr/lib/systemd/system/pilotfish.service; do
  dpkg-deb -c "$DEB" | awk '{print $6}' | grep -qx "$f" || fail "$f missing from the .deb"
done

TAR=$(packaging/debootstrap-rootfs.sh "$PKG_OUT")
CH="$PKG_OUT/chroot-deb"
cleanup() {
  [ -n "${PF_PID:-}" ] && kill "$PF_PID" 2>/dev/null || true
  for m in proc dev/pts dev; do mountpoint -q "$CH/$m" 2>/dev/null && umount -l "$CH/$m" || true; done
  rm -rf "$CH"
}
trap cleanup EXIT
cleanup
mkdir -p "$CH"
tar -C "$CH" -xf "$TAR"
mount -t proc proc "$CH/proc"
mount --bind /dev "$CH/dev"
mount --bind /dev/pts "$CH/dev/pts"
cp -L /etc/resolv.conf "$CH/etc/resolv.conf"
cp "$DEB" "$CH/tmp/"
in_chroot() { chroot "$CH" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }

log "deb: apt-get install ./$(basename "$DEB") in a clean bookworm chroot"
t1=$SECONDS
in_chroot apt-get update -qq >/dev/null
in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "/tmp/$(basename "$DEB")" > "$PKG_OUT/deb-install.log" 2>&1 || { cat "$PKG_OUT/deb-install.log"; fail "apt-get install"; }
log "deb: installed with its dependencies in $((SECONDS - t1))s"

v=$(in_chroot pilotfish --version); log "deb: in the chroot: $v"
[[ $v == "pilotfish version: "* ]] || fail "--version"
in_chroot pilotfish --mode validate -c /usr/share/pilotfish/examples/demo.yaml || fail "validate example"
[ -f "$CH/etc/pilotfish/pilotfish.yaml" ] || fail "postinst did not create /etc/pilotfish/pilotfish.yaml"
in_chroot pilotfish --mode validate -c /etc/pilotfish/pilotfish.yaml || fail "validate /etc config"
[ -f "$CH/usr/share/pilotfish/lua/README.md" ] || fail "lua dir"
if in_chroot ldd /usr/bin/pilotfish | grep -q "not found"; then fail "unresolved shared libraries"; fi

# The unit, checked where it will run: systemd-analyze inside the chroot (so
# ExecStart's /usr/bin/pilotfish, the targets and man:pilotfish(1) resolve).
t1=$SECONDS
in_chroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd \
  >> "$PKG_OUT/deb-install.log" 2>&1 || { tail -n 20 "$PKG_OUT/deb-install.log"; fail "apt-get install systemd"; }
out=$(in_chroot systemd-analyze verify --man=no /lib/systemd/system/pilotfish.service 2>&1) \
  || { echo "$out"; fail "systemd-analyze verify"; }
[ -z "$out" ] || { echo "$out"; fail "systemd-analyze verify printed warnings"; }
sec=$(in_chroot systemd-analyze security --offline=true /lib/systemd/system/pilotfish.service 2>&1 | tail -n 1 || true)
log "deb: systemd-analyze verify pilotfish.service OK ($((SECONDS - t1))s); security: ${sec:-n/a}"

ADMIN=$(free_port); LISTEN=$(free_port)
small_config "$ADMIN" "$LISTEN" "hello from the deb" > "$CH/tmp/run.yaml"
log "deb: start pilotfish in the chroot (admin :$ADMIN, listener :$LISTEN)"
chroot "$CH" /usr/bin/pilotfish -c /tmp/run.yaml --concurrency 1 --drain-time-s 2 > "$PKG_OUT/deb-run.log" 2>&1 &
PF_PID=$!
wait_http "http://127.0.0.1:$ADMIN/ready" 20 || { cat "$PKG_OUT/deb-run.log"; fail "/ready"; }
[ "$(curl -fsS "http://127.0.0.1:$LISTEN/")" = "hello from the deb" ] || fail "request through the installed pilotfish"
kill -TERM "$PF_PID"
rc=0; wait "$PF_PID" || rc=$?
PF_PID=
[ "$rc" -eq 0 ] || { cat "$PKG_OUT/deb-run.log"; fail "exit status $rc after SIGTERM"; }

in_chroot env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq pilotfish >/dev/null
[ ! -e "$CH/usr/bin/pilotfish" ] && [ ! -e "$CH/etc/pilotfish/pilotfish.yaml" ] || fail "purge left files"
log "deb: PASS in $((SECONDS - t0))s"
