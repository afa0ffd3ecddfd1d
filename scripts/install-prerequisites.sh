#!/usr/bin/env bash
# Installs the few Debian packages the build and the tests use, only when they are missing.
# pyprobe itself needs nothing at run time but the kernel.
set -euo pipefail
needed=()
command -v readelf >/dev/null || needed+=(binutils)
command -v gcc >/dev/null || needed+=(gcc)
command -v g++ >/dev/null || needed+=(g++)   # a C++ library whose frames record/dump --native must show demangled
command -v xz >/dev/null || needed+=(xz-utils)   # MiniDebugInfo made as Fedora makes it, for the native symbol tests
# The NativeAOT link is static (docs/facts.md, "a static binary"): the C library's archives (libc.a, libm.a, librt.a, libdl.a).
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || needed+=(libc6-dev)
[ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ] || needed+=(systemtap-sdt-dev)
command -v tmux >/dev/null || needed+=(tmux)
command -v dpkg-deb >/dev/null || needed+=(dpkg)
command -v bpftrace >/dev/null || needed+=(bpftrace)   # the fault tests run it beside pyprobe on the same probes
command -v go >/dev/null || needed+=(golang-go)   # go tool pprof reads the pprof files record writes
command -v chromium >/dev/null || needed+=(chromium)   # the viewer tests open the flame graph and speedscope in it
command -v prometheus >/dev/null && command -v promtool >/dev/null || needed+=(prometheus)   # the serve tests scrape pyprobe serve with it and lint /metrics with promtool
command -v npm >/dev/null || needed+=(npm)   # fetches speedscope's own app, below
command -v setpriv >/dev/null && command -v unshare >/dev/null || needed+=(util-linux)
command -v strace >/dev/null || needed+=(strace)   # a tracer that already holds a process, which dump --native must refuse
if [ ${#needed[@]} -gt 0 ]; then
  echo "installing: ${needed[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
fi

# speedscope's own web app (the npm package's prebuilt dist/release), for the viewer tests. Pinned, so a test
# failure means our file changed, not the viewer; unpacked without its CLI's dependencies.
speedscope_version=1.25.0
speedscope_dir=${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/speedscope
if ! grep -qs "\"version\": \"$speedscope_version\"" "$speedscope_dir/package.json"; then
  echo "installing: speedscope $speedscope_version"
  pack=$(mktemp -d)
  (cd "$pack" && npm pack "speedscope@$speedscope_version" --silent >/dev/null 2>&1) || { echo "npm pack speedscope failed" >&2; exit 1; }
  rm -rf "$speedscope_dir" && mkdir -p "$speedscope_dir"
  tar -xzf "$pack"/speedscope-*.tgz -C "$speedscope_dir" --strip-components=1
  rm -rf "$pack"
fi

command -v dotnet >/dev/null || { echo "the .NET SDK is missing (dotnet not on PATH)" >&2; exit 1; }
