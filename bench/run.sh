#!/usr/bin/env bash
# The whole pyprobe benchmark: builds dist/pyprobe and the bench driver, installs bpftrace (Debian) and the
# Debian CPythons when missing, runs every case and writes BENCHMARKS.md at the repository root.
#   sudo bench/run.sh            # full run (~15-20 min on 2 cores)
#   sudo bench/run.sh --quick    # smoke run: 2 repetitions, 200k calls (writes BENCHMARKS.md too; use --out)
#   options: --reps N --calls N --only overhead,breakdown,rate,startup,throughput,scale,profiler,evalframe,dump --out FILE
#   --update (with --only): replace only those sections (and their headlines) in the existing output file
#            --baseline PATH (an earlier pyprobe binary, measured side by side in the throughput section)
#   environment: BENCH_STEPS=Step,... (breakdown steps), BENCH_OUTPUTS=text,raw,... (throughput variants by name prefix)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then echo "bench/run.sh: needs root (BPF, uprobes)" >&2; exit 1; fi
if ! command -v bpftrace >/dev/null; then
  echo "bench: installing bpftrace from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null
fi
manifest="${PYPROBE_CACHE:-$HOME/.cache/pyprobe}/pythons/pythons.tsv"
for v in 3.9 3.15; do
  if ! grep -q "^$v	" "$manifest" 2>/dev/null; then scripts/fetch-pythons.sh "$v" || [ "$v" = 3.15 ]; fi
done
# austin, for the profiler section (optional: its rows are skipped without it)
scripts/fetch-austin.sh >&2 || echo "bench: austin is not available; the profiler section runs without it" >&2

if [ -z "${BENCH_NO_BUILD:-}" ]; then
  if ! scripts/build.sh >&2; then
    [ -x dist/pyprobe ] || exit 1
    echo "bench: scripts/build.sh failed; benchmarking the existing dist/pyprobe" >&2
  fi
fi

# The bench driver builds into bench/.artifacts (its own obj/ and bin/ for every project it references),
# so it never touches the obj/ folders that scripts/build.sh and the tests use.
dotnet build bench/Pyprobe.Bench/Pyprobe.Bench.csproj -c Release --artifacts-path bench/.artifacts -nologo -v quiet >&2
exec dotnet bench/.artifacts/bin/Pyprobe.Bench/release/Pyprobe.Bench.dll --root "$root" "$@"
