#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine and runs every test:
# the Debian CPython builds (scripts/fetch-pythons.sh), the NativeAOT binary, then all test projects.
# Ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "pyprobe's tests load BPF programs into the kernel: run them as root" >&2
  exit 1
fi

scripts/install-prerequisites.sh || exit 1
scripts/fetch-pythons.sh || exit 1
scripts/build.sh || exit 1

log=$(mktemp)
# One test project at a time: they load BPF programs and time real interpreters, and a starved
# consumer on this 2-core machine would turn a lossless trace into a flaky one.
dotnet test pyprobe.slnx -nologo -m:1 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# dotnet test prints one "Passed!/Failed!  - Failed: N, Passed: N, ..." line per test project.
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
rm -f "$log"
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi   # a build or runner failure counts as a failure
echo "$passed passed, $failed failed"
exit "$status"
