"""Workload for pyprobe gc/imports/audit tests: known events between stdin handshakes.

argv[1] = temp dir. Prints "ready", waits for a line, then:
  7 gc.collect() with automatic gc off, the last three on generations 0, 1, 2 in turn (i % 3);
  imports `parent` (which imports child_a and child_b) from the temp dir, and a missing module;
  open(<tempdir>/pyprobe-audit-XYZ, 'w');
  sys.audit('pyprobe.x', 42, b'ab', None, ('t', 1)).
Then prints "done" and waits for stdin to close, so the tracer can stop before the interpreter's shutdown.
"""
import gc
import os
import sys

gc.disable()
directory = sys.argv[1]
with open(os.path.join(directory, "parent.py"), "w") as f:
    f.write("import child_a\nimport child_b\n")
for name in ("child_a", "child_b"):
    with open(os.path.join(directory, name + ".py"), "w") as f:
        f.write("VALUE = 1\n")
sys.path.insert(0, directory)
target = os.path.join(directory, "pyprobe-audit-XYZ")

print("ready", flush=True)
sys.stdin.readline()
for i in range(7):
    gc.collect(i % 3)
__import__("parent")
try:
    __import__("pyprobe_missing_module")
except ImportError:
    pass
open(target, "w").close()
sys.audit("pyprobe.x", 42, b"ab", None, ("t", 1))
print("done", flush=True)
sys.stdin.read()
