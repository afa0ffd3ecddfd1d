"""A workload whose probe events are known exactly (pyprobe's trace tests).

Between the audit events "pyprobe.begin" and "pyprobe.end" it makes:
  fib(18): 8361 calls of fib; Counter.tick: 1000 calls; 7 gc.collect() with automatic GC off;
  5 fresh modules imported plus one missing; 11 sys.audit("pyprobe.test", i) calls.
With "wait" as argv[1] it prints "ready" and waits for a line on stdin before starting.
"""
import gc
import os
import sys
import tempfile

gc.disable()


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Counter:
    def __init__(self):
        self.n = 0

    def tick(self):
        self.n += 1


directory = tempfile.mkdtemp(prefix="pyprobe-mods-")
for i in range(5):
    with open(os.path.join(directory, f"pyprobe_fresh_{i}.py"), "w") as f:
        f.write("VALUE = %d\n" % i)
sys.path.insert(0, directory)

if len(sys.argv) > 1 and sys.argv[1] == "wait":
    print("ready", flush=True)
    sys.stdin.readline()

sys.audit("pyprobe.begin")
fib(18)
counter = Counter()
for _ in range(1000):
    counter.tick()
for _ in range(7):
    gc.collect()
for i in range(5):
    __import__(f"pyprobe_fresh_{i}")  # the C import path, where the import probes are
try:
    import pyprobe_missing_module  # noqa: F401
except ImportError:
    pass
for i in range(11):
    sys.audit("pyprobe.test", i)
sys.audit("pyprobe.end")
print("done", flush=True)
