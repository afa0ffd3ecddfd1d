#!/usr/bin/env bash
# fetch-austin.sh - put Debian's austin (a frame-stack sampler for CPython, a point of comparison for
# `pyprobe record` in bench/) into a private cache, unpacked like the interpreters: nothing is installed.
#
# bookworm's austin (1.0.1) predates CPython 3.11; trixie's 3.7 reads 3.8–3.13 (its package declares
# python3 << 3.14). It needs a newer libc than bookworm's, so its own libc is unpacked with it and it runs
# through that libc's loader, like the 3.13+ interpreters.
#
# The private apt configuration for trixie is the one scripts/fetch-pythons.sh keeps (it fetches 3.13
# from trixie, and derives the archive address from the machine's apt configuration).
#
# Layout (CACHE = ${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/austin):
#   CACHE/root/...      unpacked .debs (root/usr/bin/austin is the ELF)
#   CACHE/bin/austin    launcher: the loader, the library path, the binary
#   CACHE/version       the package version
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=trixie
PACKAGES=(austin libc6 libsframe1 libunwind8 libzstd1 zlib1g)
PARENT="${PYPROBE_CACHE:-$HOME/.cache/pyprobe}"
CACHE="$PARENT/austin"
APTDIR="$PARENT/pythons/.apt/$SUITE"
TRIPLET=x86_64-linux-gnu

die() { echo "fetch-austin: error: $*" >&2; exit 1; }

if [ -x "$CACHE/bin/austin" ] && "$CACHE/bin/austin" --version >/dev/null 2>&1; then
  echo "austin in $CACHE: $("$CACHE/bin/austin" --version 2>&1 | head -n1)"
  exit 0
fi
[ "$(uname -m)" = x86_64 ] || die "only x86_64 is supported"

# The private trixie apt state comes with Debian's 3.13; refresh its lists when older than a day.
[ -f "$APTDIR/apt.conf" ] || scripts/fetch-pythons.sh 3.13 >&2
[ -f "$APTDIR/apt.conf" ] || die "no private apt configuration for $SUITE in $APTDIR"
if [ -z "$(find "$APTDIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
  APT_CONFIG="$APTDIR/apt.conf" apt-get -q update >"$APTDIR/update.log" 2>&1 || die "apt-get update for $SUITE failed (see $APTDIR/update.log)"
fi

tmp="$CACHE.build.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"; mkdir -p "$tmp/debs" "$tmp/root/bin"
(cd "$tmp/debs" && APT_CONFIG="$APTDIR/apt.conf" apt-get -q download "${PACKAGES[@]}" >"$tmp/download.log" 2>&1) \
  || die "apt-get download failed: $(grep -m1 -E '^E: ' "$tmp/download.log" || tail -n1 "$tmp/download.log")"
for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root/root" || die "dpkg-deb -x $deb failed"; done
version=$(dpkg-deb --showformat='${Version}' -W "$tmp"/debs/austin_*.deb)

loader="$CACHE/root/usr/lib/$TRIPLET/ld-linux-x86-64.so.2"
[ -f "$tmp/root/root/usr/lib/$TRIPLET/ld-linux-x86-64.so.2" ] || die "libc6 unpacked without its loader"
rm -rf "$CACHE"; mkdir -p "$CACHE/bin"
mv "$tmp/root/root" "$CACHE/root"
echo "$version" >"$CACHE/version"
{
  echo '#!/bin/sh'
  echo "# austin $version from Debian $SUITE, unpacked by scripts/fetch-austin.sh"
  echo "exec '$loader' --library-path '$CACHE/root/usr/lib/$TRIPLET:/lib/$TRIPLET:/usr/lib/$TRIPLET' '$CACHE/root/usr/bin/austin' \"\$@\""
} >"$CACHE/bin/austin"
chmod 755 "$CACHE/bin/austin"
"$CACHE/bin/austin" --version >/dev/null 2>&1 || die "austin does not run: $("$CACHE/bin/austin" --version 2>&1 | tail -n1)"
echo "austin in $CACHE: $("$CACHE/bin/austin" --version 2>&1 | head -n1) (Debian $version)"
