#!/usr/bin/env bash
# Makes (once per build dir) a minimal Debian bookworm root filesystem with
# debootstrap and prints the path of its tarball.  Used by docker/test-image.sh
# (to create a stand-in debian:bookworm-slim when no registry is reachable)
# and by tests/packaging/test-deb.sh (a clean system to install the .deb into).
#
#   packaging/debootstrap-rootfs.sh [OUT_DIR]     (default: build-packaging)
#
# The mirror is the one apt on this machine already uses (deb822 .sources
# files first, then sources.list); override with DEBIAN_MIRROR=URL.
# Needs root (debootstrap, chroot).  Nothing is cached across machines: the
# tarball lives in OUT_DIR and is reused only while that directory exists.
set -euo pipefail
OUT=${1:-build-packaging}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TAR="$OUT/rootfs-bookworm.tar"
if [ -s "$TAR" ]; then echo "$TAR"; exit 0; fi

debian_mirror() {
  [ -n "${DEBIAN_MIRROR:-}" ] && { echo "$DEBIAN_MIRROR"; return; }
  local f u
  # deb822: the first URIs: of a stanza whose Suites: holds plain "bookworm".
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    u=$(awk 'BEGIN{RS=""; FS="\n"}
      { uris=""; suite=0
        for (i=1;i<=NF;i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); uris=a[1] }
          if ($i ~ /^Suites:/) { n=split($i, s, /[ \t]+/); for (j=2;j<=n;j++) if (s[j]=="bookworm") suite=1 }
        }
        if (uris != "" && suite) { print uris; exit } }' "$f")
    [ -n "$u" ] && { echo "$u"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    u=$(awk '$1=="deb" { i=2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
             if ($(i+1)=="bookworm") { print $i; exit } }' "$f")
    [ -n "$u" ] && { echo "$u"; return; }
  done
  echo http://deb.debian.org/debian
}

command -v debootstrap >/dev/null || {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >&2; }
MIRROR=$(debian_mirror)
DIR="$OUT/rootfs-bookworm.tmp"
rm -rf "$DIR"
echo "debootstrap: bookworm minbase from $MIRROR" >&2
start=$SECONDS
debootstrap --variant=minbase bookworm "$DIR" "$MIRROR" > "$OUT/debootstrap.log" 2>&1 || {
  tail -n 30 "$OUT/debootstrap.log" >&2; exit 1; }

# Like the official image: updates and security suites next to the release,
# no package lists or downloaded .debs kept, no docs or man pages installed.
SEC=${MIRROR%/debian}/debian-security
[ "$SEC" = "$MIRROR/debian-security" ] && SEC=http://deb.debian.org/debian-security
rm -f "$DIR/etc/apt/sources.list"
cat > "$DIR/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SEC
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
cat > "$DIR/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
rm -rf "$DIR"/var/cache/apt/archives/*.deb "$DIR"/var/lib/apt/lists/* "$DIR"/usr/share/doc/*/[!c]* \
       "$DIR"/usr/share/man/* "$DIR"/usr/share/info/* "$DIR"/usr/share/locale/*
: > "$DIR/etc/resolv.conf"
tar -C "$DIR" --numeric-owner -cf "$TAR.tmp" .
mv "$TAR.tmp" "$TAR"
rm -rf "$DIR"
echo "debootstrap: $TAR in $((SECONDS - start))s" >&2
echo "$TAR"
