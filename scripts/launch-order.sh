#!/usr/bin/env bash
# Regenerates src/Pyprobe.Cli/launch-order.txt: pyprobe's managed methods in the order real launches first call them
# (trace, calls and record attached to a running Python), which the build passes to the NativeAOT compiler
# (IlcOrderFile) so that the code a launch runs sits together at the start of the binary's code. Run it as root when
# the launch path has changed; it builds dist/pyprobe, records, and builds again with the new order.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "scripts/launch-order.sh: needs root (uprobes)" >&2; exit 1; fi

scripts/fetch-pythons.sh 3.9 >&2
with_probes="${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/bin/python3.9"
# A Python without probes, for the eval-frame launches: pyenv's 3.12 where it is installed.
without_probes=$(ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin/python3.12 2>/dev/null | head -1 || true)

scripts/build.sh >&2
dotnet build tools/Pyprobe.LaunchOrder -c Release -nologo -v quiet -o .build/launch-order >&2
.build/launch-order/Pyprobe.LaunchOrder dist/pyprobe .build/publish/pyprobe.dbg src/Pyprobe.Cli/launch-order.txt "$with_probes" $without_probes
scripts/build.sh >&2
