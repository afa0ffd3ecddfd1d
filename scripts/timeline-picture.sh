#!/usr/bin/env bash
# Regenerates docs/timeline-speedscope.png: traces demo/timeline.py from its first instruction under Debian's
# CPython 3.9 (function, gc and import probes) with --format chrome, then opens the trace in speedscope's own app
# (the npm package) in headless Chromium and captures the time-ordered view (tests/Pyprobe.Viewers.Tests,
# TimelinePictureTests). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "timeline-picture: run as root (pyprobe loads BPF programs)" >&2; exit 1; fi
[ -x dist/pyprobe ] || scripts/build.sh
scripts/fetch-pythons.sh >/dev/null

# The interpreter itself (the cache's bin/python3.9 is a launcher script): binary and library folder from the manifest.
manifest="${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/pythons.tsv"
python=$(awk -F'\t' '$1 == "3.9" { print $3 }' "$manifest")
libs=$(awk -F'\t' '$1 == "3.9" { print $7 }' "$manifest")
trace=$(mktemp --suffix=.json)
trap 'rm -f "$trace"' EXIT
dist/pyprobe trace function__entry gc__start gc__done import__find__load__start import__find__load__done \
  --format chrome -o "$trace" -- /lib64/ld-linux-x86-64.so.2 --library-path "$libs" "$python" demo/timeline.py
PYPROBE_TIMELINE="$trace" PYPROBE_PICTURE="$PWD/docs/timeline-speedscope.png" \
  dotnet test tests/Pyprobe.Viewers.Tests -nologo --filter "FullyQualifiedName~TimelinePictureTests"
echo "wrote docs/timeline-speedscope.png"
