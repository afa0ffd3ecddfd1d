#!/usr/bin/env bash
# Installs the few Debian packages the build and the tests use, only when they are missing.
# pyprobe itself needs nothing at run time but the kernel.
set -euo pipefail
needed=()
command -v readelf >/dev/null || needed+=(binutils)
command -v gcc >/dev/null || needed+=(gcc)
[ -f /usr/include/x86_64-linux-gnu/sys/sdt.h ] || [ -f /usr/include/sys/sdt.h ] || needed+=(systemtap-sdt-dev)
command -v tmux >/dev/null || needed+=(tmux)
command -v dpkg-deb >/dev/null || needed+=(dpkg)
command -v bpftrace >/dev/null || needed+=(bpftrace)   # the fault tests run it beside pyprobe on the same probes
command -v go >/dev/null || needed+=(golang-go)   # go tool pprof reads the pprof files record writes
command -v setpriv >/dev/null && command -v unshare >/dev/null || needed+=(util-linux)
if [ ${#needed[@]} -gt 0 ]; then
  echo "installing: ${needed[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { echo "the .NET SDK is missing (dotnet not on PATH)" >&2; exit 1; }
