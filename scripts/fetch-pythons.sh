#!/usr/bin/env bash
# fetch-pythons.sh - put Debian's CPython builds into a private cache, for tests.
#
# Nothing is installed into the system and the machine's apt sources are left
# alone: every suite gets a private apt configuration (own sources list, own
# lists/cache dirs, no system apt.conf.d), packages are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`.
#
# Usage: scripts/fetch-pythons.sh [VERSION...]      (default: all of them)
#
# Layout (CACHE = ${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons):
#   CACHE/bin/python3.X      launcher; execs the interpreter (or, for builds that
#                            need a newer libc than the host's, that libc's loader)
#   CACHE/3.X/root/...       unpacked .debs (root/usr/bin/python3.X is the ELF)
#   CACHE/3.X/meta           what was found (full version, loader, lib path...)
#   CACHE/3.X/packages.txt   the packages unpacked into root/
#   CACHE/pythons.tsv        manifest, one line per version, tab-separated:
#     version full_version binary launcher needs_own_loader loader library_path libpython
#   CACHE/.apt/<suite>/      private apt state
#
# Environment: PYPROBE_CACHE (cache parent), PYPROBE_DEBIAN_MIRROR (override the
# archive address; by default it is read from the machine's apt configuration).
set -euo pipefail

LAYOUT=1
PROG=fetch-pythons

die() { echo "$PROG: error: $*" >&2; exit 1; }
log() { echo "$PROG: $*" >&2; }

# version -> suites to try, in order (first one that carries python3.X-minimal wins)
declare -A SUITES=(
  [3.9]="bullseye"
  [3.11]="bookworm"
  [3.13]="trixie"
  [3.14]="sid experimental"
  [3.15]="sid experimental"
)
ALL_VERSIONS=(3.9 3.11 3.13 3.14 3.15)

case "$(uname -m)" in
  x86_64) ARCH=amd64; TRIPLET=x86_64-linux-gnu; LDSO='ld-linux-x86-64.so.2' ;;
  *) die "unsupported machine $(uname -m) (only x86_64 is supported)" ;;
esac

CACHE="${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons"

if [ $# -gt 0 ]; then VERSIONS=("$@"); else VERSIONS=("${ALL_VERSIONS[@]}"); fi
for v in "${VERSIONS[@]}"; do
  [ -n "${SUITES[$v]:-}" ] || die "unknown version '$v' (known: ${ALL_VERSIONS[*]})"
done

mkdir -p "$CACHE/bin" || die "cannot create $CACHE"
command -v flock >/dev/null || die "flock (util-linux) is missing"
exec 9>"$CACHE/.lock"
flock 9 || die "cannot lock $CACHE/.lock"
trap 'rm -rf "$CACHE"/.build-*."$$"' EXIT

# ---------------------------------------------------------------- helpers

meta_get() { # file key
  sed -n "s/^$2=//p" "$1" | head -n1
}

is_complete() { # version
  local d="$CACHE/$1"
  [ -f "$d/meta" ] && [ "$(meta_get "$d/meta" layout)" = "$LAYOUT" ] \
    && [ -x "$d/root/usr/bin/python$1" ]
}

write_if_changed() { # path mode  (content on stdin)
  local tmp="$1.tmp.$$"
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; else chmod "$2" "$tmp"; mv -f "$tmp" "$1"; fi
}

# ------------------------------------------------------------ host tools

need_tools() {
  local missing=() t
  for t in apt-get apt-cache dpkg-deb dpkg-query; do
    command -v "$t" >/dev/null || die "$t is missing (a Debian-based host is required)"
  done
  # dpkg-deb needs xz for data.tar.xz members on some dpkg builds
  command -v xz >/dev/null || missing+=(xz-utils)
  command -v gpgv >/dev/null || missing+=(gpgv)
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing host tools: ${missing[*]} (install them as root)"
    log "installing host tools: ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } \
      || die "apt-get install ${missing[*]} failed"
  fi
}

# Archive address and keyring, from the machine's apt configuration.
MIRROR="" KEYRING=""
find_mirror() {
  [ -n "$MIRROR" ] && return 0
  local codename="" f
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}") || true
  [ -n "$codename" ] || codename=bookworm
  # deb822 files: take the stanza whose Suites: has a suite ending in the host codename
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    read -r MIRROR KEYRING < <(awk -v cn="$codename" '
      function flush() {
        if (uri != "" && ok) { print uri, (key == "" ? "-" : key); found = 1; exit }
        uri = ""; key = ""; ok = 0
      }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\// && uri == "") uri = $i }
      /^Signed-By:/ { if ($2 ~ /^\//) key = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i ~ (cn "$")) ok = 1 }
      END { if (!found) flush() }' "$f") || true
    [ -n "$MIRROR" ] && break
  done
  # one-line format
  if [ -z "$MIRROR" ] && [ -f /etc/apt/sources.list ]; then
    MIRROR=$(awk -v cn="$codename" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\// && $(i+1) == cn) { print $i; exit } }' \
      /etc/apt/sources.list) || true
  fi
  [ -z "${PYPROBE_DEBIAN_MIRROR:-}" ] || MIRROR=$PYPROBE_DEBIAN_MIRROR
  [ -n "$MIRROR" ] || die "cannot find a Debian archive address for '$codename' in /etc/apt (set PYPROBE_DEBIAN_MIRROR)"
  MIRROR=${MIRROR%/}
  if [ -z "$KEYRING" ] || [ "$KEYRING" = "-" ] || [ ! -f "$KEYRING" ]; then
    KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  fi
  [ -f "$KEYRING" ] || die "Debian archive keyring $KEYRING is missing (apt-get install debian-archive-keyring)"
}

# Private apt configuration for one suite; sets APTDIR and exports nothing.
declare -A APT_READY=()
apt_setup() { # suite
  local suite=$1
  APTDIR="$CACHE/.apt/$suite"
  [ -n "${APT_READY[$suite]:-}" ] && return 0
  find_mirror
  mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/empty" \
    || die "cannot create $APTDIR"
  : >"$APTDIR/status"
  {
    echo "deb [arch=$ARCH signed-by=$KEYRING] $MIRROR $suite main"
    # experimental only carries a few packages: its dependencies come from sid
    [ "$suite" != experimental ] || echo "deb [arch=$ARCH signed-by=$KEYRING] $MIRROR sid main"
  } >"$APTDIR/sources.list"
  {
    echo "Dir::Etc::Parts \"$APTDIR/empty\";"
    echo "Dir::Etc::PreferencesParts \"$APTDIR/empty\";"
    echo "Dir::Etc::Preferences \"/dev/null\";"
    echo "Dir::Etc::main \"/dev/null\";"
    echo "Dir::Etc::SourceList \"$APTDIR/sources.list\";"
    echo "Dir::Etc::SourceParts \"$APTDIR/empty\";"
    echo "Dir::State \"$APTDIR\";"
    echo "Dir::State::Lists \"$APTDIR/lists\";"
    echo "Dir::State::status \"$APTDIR/status\";"
    echo "Dir::Cache \"$APTDIR/cache\";"
    echo "Dir::Cache::srcpkgcache \"\";"
    echo "Acquire::GzipIndexes \"true\";"
    echo "APT::Architecture \"$ARCH\";"
    echo "APT::Architectures { \"$ARCH\"; };"
    echo "Acquire::Languages \"none\";"
    echo "Acquire::Retries \"3\";"
    echo "APT::Sandbox::User \"$(id -un)\";"
    # keep the host's network-related settings (proxies, snapshot date checks)
    apt-config dump 2>/dev/null | grep -E '^Acquire::(https?|ftp|Check-Valid-Until|Check-Date|ForceIPv4|ForceIPv6)' || true
  } >"$APTDIR/apt.conf"
  # refresh the index when older than a day (or never fetched)
  if [ -z "$(find "$APTDIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
    log "apt-get update ($suite, private lists)"
    APT_CONFIG="$APTDIR/apt.conf" apt-get -q update >"$APTDIR/update.log" 2>&1 \
      || die "apt-get update for $suite failed (see $APTDIR/update.log)"
    if grep -qE '^(W|E): ' "$APTDIR/update.log"; then
      die "apt-get update for $suite: $(grep -m1 -E '^(W|E): ' "$APTDIR/update.log")"
    fi
  fi
  APT_READY[$suite]=1
}

papt_cache() { APT_CONFIG="$APTDIR/apt.conf" apt-cache "$@"; }

has_candidate() { # pkg
  local c
  c=$(papt_cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }')
  [ -n "$c" ] && [ "$c" != "(none)" ]
}

candidate_field() { # pkg field
  papt_cache show --no-all-versions "$1" 2>/dev/null \
    | awk -v f="$2" 'BEGIN { IGNORECASE = 1 }
        $0 ~ "^" f ":" { sub("^[^:]*:[ \t]*", ""); val = $0; on = 1; next }
        on && /^[ \t]/ { val = val " " $0; next }
        { on = 0 }
        END { print val }'
}

# Is one alternative of a dependency ("name (op ver)") satisfied by the host?
host_satisfies() { # name op ver
  local name=${1%%:*} st ver
  st=$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$name" 2>/dev/null) || return 1
  [ "${st%% *}" = installed ] || return 1
  ver=${st#* }
  [ -z "$2" ] && return 0
  dpkg --compare-versions "$ver" "$2" "$3"
}

is_lib_pkg() { case "$1" in lib*|zlib1g) return 0 ;; *) return 1 ;; esac }

# Packages to fetch for python3.X from the current suite: the python packages
# themselves, plus every (transitive) library dependency that the host does not
# satisfy (missing, or installed at a too-old version).
resolve_packages() { # version
  local v=$1 p dep alt name op ver sat first
  local -a queue=() out=()
  local -A seen=()
  for p in "python$v-minimal" "libpython$v-minimal" "libpython$v-stdlib" "libpython$v"; do
    has_candidate "$p" || { [ "$p" = "libpython$v" ] && continue; die "$p not found in suite"; }
    queue+=("$p"); seen[$p]=1
  done
  while [ ${#queue[@]} -gt 0 ]; do
    p=${queue[0]}; queue=("${queue[@]:1}"); out+=("$p")
    while IFS= read -r dep; do
      [ -n "$dep" ] || continue
      sat=0; first=""
      while IFS= read -r alt; do
        alt=$(echo "$alt" | sed -E 's/\[[^]]*\]//g; s/<[^>]*>//g; s/^[[:space:]]+//; s/[[:space:]]+$//')
        [ -n "$alt" ] || continue
        name=${alt%% *}; name=${name%%:*}; op=""; ver=""
        if [[ "$alt" =~ \(([<>=]+)[[:space:]]*([^\)]+)\) ]]; then
          op=${BASH_REMATCH[1]}; ver=${BASH_REMATCH[2]}; ver=${ver%% *}
          case "$op" in '>=') op=ge ;; '<=') op=le ;; '=') op=eq ;; '>>') op=gt ;; '<<') op=lt ;; *) op="" ;; esac
        fi
        if [ -n "${seen[$name]:-}" ] || ! is_lib_pkg "$name" || host_satisfies "$name" "$op" "$ver"; then
          sat=1; break
        fi
        [ -n "$first" ] || first=$name
      done < <(echo "$dep" | tr '|' '\n')
      [ $sat = 1 ] && continue
      [ -n "$first" ] || continue
      has_candidate "$first" || die "dependency $first of $p is not in the suite"
      seen[$first]=1; queue+=("$first")
    done < <( { candidate_field "$p" Pre-Depends; candidate_field "$p" Depends; } | tr ',' '\n')
  done
  printf '%s\n' "${out[@]}"
}

# ldd with a chosen loader and library path; prints problems, one per line
ldd_problems() { # loader libpath file...
  local loader=$1 lp=$2 f; shift 2
  for f in "$@"; do
    LD_TRACE_LOADED_OBJECTS=1 LD_WARN=yes LD_LIBRARY_PATH="$lp" "$loader" "$f" 2>&1 \
      | grep -E 'not found' | sed "s|^|${f##*/}: |" || true
  done
}

# ------------------------------------------------------------ one version

build_version() { # version
  local v=$1 suite found="" d tmp root pkgs p f deb
  for suite in ${SUITES[$v]}; do
    apt_setup "$suite"
    if has_candidate "python$v-minimal"; then found=$suite; break; fi
  done
  [ -n "$found" ] || die "python$v-minimal is in none of: ${SUITES[$v]}"
  log "python$v: from $found"

  pkgs=$(resolve_packages "$v") || exit 1
  d="$CACHE/$v"
  tmp="$CACHE/.build-$v.$$"
  rm -rf "$tmp"; mkdir -p "$tmp/root" "$tmp/debs"
  log "python$v: downloading $(echo "$pkgs" | wc -l) packages: $(echo "$pkgs" | paste -sd' ')"
  # shellcheck disable=SC2086
  (cd "$tmp/debs" && APT_CONFIG="$APTDIR/apt.conf" apt-get -q download $pkgs >"$tmp/download.log" 2>&1) \
    || die "apt-get download for python$v failed: $(grep -m1 -E '^E: ' "$tmp/download.log" || tail -n1 "$tmp/download.log")"
  : >"$tmp/packages.txt"
  for deb in "$tmp"/debs/*.deb; do
    dpkg-deb -x "$deb" "$tmp/root" || die "dpkg-deb -x $deb failed"
    dpkg-deb --showformat='${Package} ${Version}\n' -W "$deb" >>"$tmp/packages.txt"
  done

  root="$tmp/root"
  local bin_rel="usr/bin/python$v"
  [ -x "$root/$bin_rel" ] || die "python$v: $bin_rel missing after unpacking"

  # own libc? (libc6 fetched because the host's is too old)
  local needs=no loader_rel="" libdirs_rel=() ld
  if grep -q '^libc6 ' "$tmp/packages.txt"; then
    needs=yes
    # the real file, not a symlink (those may point to the host's /lib64)
    for ld in "usr/lib/$TRIPLET/$LDSO" "lib/$TRIPLET/$LDSO" "usr/lib64/$LDSO" "lib64/$LDSO"; do
      if [ -f "$root/$ld" ] && [ ! -L "$root/$ld" ]; then loader_rel=$ld; break; fi
    done
    [ -n "$loader_rel" ] || die "python$v: libc6 unpacked but no $LDSO found"
  fi
  for ld in "lib/$TRIPLET" "usr/lib/$TRIPLET"; do
    if [ -d "$root/$ld" ] && [ ! -L "$root/$ld" ] \
       && [ -n "$(find "$root/$ld" -maxdepth 1 -name '*.so*' ! -name 'libpython*' -print -quit)" ]; then
      libdirs_rel+=("$ld")
    fi
  done

  local libpython_rel=""
  f=$(cd "$root" && ls "usr/lib/$TRIPLET/libpython$v"*.so.1.0 2>/dev/null | head -n1) || true
  [ -z "$f" ] || libpython_rel=$f

  # check the dynamic linking of the binary, libpython and the extension modules
  local lp="" x loader
  for x in "${libdirs_rel[@]}"; do lp="$lp${lp:+:}$root/$x"; done
  [ -n "$lp" ] || lp=/nonexistent
  if [ $needs = yes ]; then
    loader="$root/$loader_rel"; lp="$lp:/lib/$TRIPLET:/usr/lib/$TRIPLET"
  else
    loader=/lib64/$LDSO
  fi
  local problems
  problems=$(ldd_problems "$loader" "$lp" "$root/$bin_rel" ${libpython_rel:+"$root/$libpython_rel"})
  [ -z "$problems" ] || die "python$v does not link: $(echo "$problems" | head -n1)"
  problems=$(ldd_problems "$loader" "$lp" "$root"/usr/lib/python"$v"/lib-dynload/*.so)
  [ -z "$problems" ] || log "python$v: warning: some extension modules do not link: $(echo "$problems" | head -n1)"

  # install into place, then run it through its launcher
  rm -rf "$d"; mkdir -p "$d"
  mv "$root" "$d/root"; mv "$tmp/packages.txt" "$d/packages.txt"
  rm -rf "$tmp"
  {
    echo "suite=$found"
    echo "needs_own_loader=$needs"
    echo "loader=$loader_rel"
    echo "libdirs=${libdirs_rel[*]}"
    echo "libpython=$libpython_rel"
  } >"$d/meta.partial"
  write_launcher "$v" "$d/meta.partial"
  local out
  out=$("$CACHE/bin/python$v" -c 'import sys, asyncio, json, gc; print(sys.version.split()[0]); print(sys.prefix)' 2>&1) \
    || die "python$v does not run: $(echo "$out" | tail -n1)"
  local full=${out%%$'\n'*} prefix=${out#*$'\n'}
  [ "$prefix" = "$d/root/usr" ] || die "python$v: sys.prefix is '$prefix', expected '$d/root/usr'"
  out=$("$CACHE/bin/python$v" -c 'import ssl, ctypes, decimal, sqlite3, lzma, bz2, zlib, pyexpat, hashlib' 2>&1) \
    || log "python$v: warning: optional modules: $(echo "$out" | tail -n1)"
  { echo "layout=$LAYOUT"; echo "full=$full"; cat "$d/meta.partial"; } >"$d/meta"
  rm -f "$d/meta.partial"
  log "python$v: ok ($full, own loader: $needs)"
}

# Launcher: exec so that the traced process is the interpreter (or its loader).
write_launcher() { # version metafile
  local v=$1 m=$2 d="$CACHE/$1" needs loader libdirs lp="" x
  needs=$(meta_get "$m" needs_own_loader)
  loader=$(meta_get "$m" loader)
  libdirs=$(meta_get "$m" libdirs)
  for x in $libdirs; do lp="$lp${lp:+:}$d/root/$x"; done
  {
    echo '#!/bin/sh'
    echo "# python$v from Debian, unpacked by scripts/fetch-pythons.sh"
    if [ "$needs" = yes ]; then
      echo "exec '$d/root/$loader' --library-path '$lp:/lib/$TRIPLET:/usr/lib/$TRIPLET' '$d/root/usr/bin/python$v' \"\$@\""
    elif [ -n "$lp" ]; then
      echo "LD_LIBRARY_PATH='$lp'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
      echo "export LD_LIBRARY_PATH"
      echo "exec '$d/root/usr/bin/python$v' \"\$@\""
    else
      echo "exec '$d/root/usr/bin/python$v' \"\$@\""
    fi
  } | write_if_changed "$CACHE/bin/python$v" 755
}

manifest_line() { # version
  local v=$1 d="$CACHE/$1" m="$CACHE/$1/meta" needs loader libdirs lp="" x libpython
  needs=$(meta_get "$m" needs_own_loader)
  loader=$(meta_get "$m" loader); libdirs=$(meta_get "$m" libdirs); libpython=$(meta_get "$m" libpython)
  for x in $libdirs; do lp="$lp${lp:+:}$d/root/$x"; done
  [ "$needs" = yes ] && lp="$lp${lp:+:}/lib/$TRIPLET:/usr/lib/$TRIPLET"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$v" "$(meta_get "$m" full)" "$d/root/usr/bin/python$v" \
    "$CACHE/bin/python$v" "$needs" "${loader:+$d/root/$loader}" "$lp" "${libpython:+$d/root/$libpython}" \
    | awk 'BEGIN { FS = OFS = "\t" } { for (i = 1; i <= NF; i++) if ($i == "") $i = "-"; print }'
}

# ------------------------------------------------------------------ main

todo=()
for v in "${VERSIONS[@]}"; do is_complete "$v" || todo+=("$v"); done
if [ ${#todo[@]} -gt 0 ]; then
  need_tools
  for v in "${todo[@]}"; do build_version "$v"; done
  # apt's binary caches are big and rebuilt on demand; the (compressed) lists stay
  rm -f "$CACHE"/.apt/*/cache/*.bin
fi

# launchers and manifest (rewritten only when their content changes)
for v in "${ALL_VERSIONS[@]}"; do
  if is_complete "$v"; then write_launcher "$v" "$CACHE/$v/meta"; fi
done
for v in "${ALL_VERSIONS[@]}"; do
  if is_complete "$v"; then manifest_line "$v"; fi
done | write_if_changed "$CACHE/pythons.tsv" 644

echo "pythons in $CACHE (manifest: $CACHE/pythons.tsv)"
while IFS=$'\t' read -r v full bin launcher needs _ _ _; do
  probes=""
  if command -v readelf >/dev/null; then
    probes=", $(readelf -n "$bin" 2>/dev/null | grep -c NT_STAPSDT || true) USDT probes"
  fi
  printf '  python%-5s %-9s own loader: %-3s  %s%s\n' "$v" "$full" "$needs" "$launcher" "$probes"
done <"$CACHE/pythons.tsv"
