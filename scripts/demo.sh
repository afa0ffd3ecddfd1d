#!/usr/bin/env bash
# The seed's demo, done by pyprobe: start the bundled asyncio program demo/t.py under a CPython whose
# function probes fire (Debian's 3.9, fetched into a cache, nothing installed system-wide), then
# attach to the running process and print every function entry, as
#   bpftrace -e 'usdt:/usr/bin/python3.10:function__entry { time(...); printf(...) }' -p PID
# does. Builds everything it needs on a fresh machine. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-3}

if [ "$(id -u)" != 0 ]; then echo "demo: run as root (pyprobe loads BPF programs)" >&2; exit 1; fi
scripts/install-prerequisites.sh >/dev/null 2>&1
scripts/fetch-pythons.sh >/dev/null
[ -x dist/pyprobe ] || scripts/build.sh

cache="${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons"
"$cache/bin/python3.9" demo/t.py > /tmp/pyprobe-demo.out 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 0.5

echo "# dist/pyprobe list -p $pid   (the probes of the running interpreter)"
dist/pyprobe list -p "$pid"
echo
echo "# dist/pyprobe trace -p $pid --duration $seconds   (every function entry, like the seed's bpftrace one-liner)"
dist/pyprobe trace -p "$pid" --duration "$seconds"
