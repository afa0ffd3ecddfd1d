#!/usr/bin/env bash
# Builds the NativeAOT binary dist/pyprobe. AOT and trimming warnings fail the build
# (TreatWarningsAsErrors covers the ILLink/ILCompiler warnings too).
set -euo pipefail
cd "$(dirname "$0")/.."
# One publish at a time: concurrent builds of the same projects trip over each other's obj/ files.
exec 9>"${TMPDIR:-/tmp}/pyprobe-build.lock"
flock 9
publish_dir=.build/publish
dotnet publish src/Pyprobe.Cli -c Release -r linux-x64 -o "$publish_dir" -nologo -v quiet -p:TreatWarningsAsErrors=true
mkdir -p dist
# Replace, not overwrite: a running dist/pyprobe (another test run) makes cp fail with "Text file busy".
cp "$publish_dir/pyprobe" "dist/.pyprobe.$$"
mv -f "dist/.pyprobe.$$" dist/pyprobe
echo "built dist/pyprobe ($(du -h dist/pyprobe | cut -f1))"
