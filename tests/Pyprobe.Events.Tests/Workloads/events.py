"""Workload for pyprobe gc/imports/audit tests: known events between stdin handshakes.

argv[1] = temp dir. Prints "ready", waits for a line, then:
  7 gc.collect() with automatic gc off, the last three on generations 0, 1, 2 in turn (i % 3);
  imports `parent` (which imports child_a and child_b) from the temp dir, and a missing module;
  child_a sleeps 0.1 s so that `parent` is the slowest load by construction, not by the machine's mood
  (a missing module's search of sys.path took longer than three small loads under load on 3.15);
  open(<tempdir>/pyprobe-audit-XYZ, 'w');
  sys.audit('pyprobe.x', 42, b'ab', None, ('t', 1)).
Then prints "done" and waits for stdin to close, so the tracer can stop before the interpreter's shutdown.
"""
import gc
import os
import sys
import time  # loaded here so child_a's `import time` is not a load event

gc.disable()
directory = sys.argv[1]
with open(os.path.join(directory, "parent.py"), "w") as f:
    f.write("import child_a\nimport child_b\n")
with open(os.path.join(directory, "child_a.py"), "w") as f:
    f.write("import time\ntime.sleep(0.1)\nVALUE = 1\n")
with open(os.path.join(directory, "child_b.py"), "w") as f:
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
