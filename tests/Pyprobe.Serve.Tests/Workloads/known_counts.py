# A workload with known counts for the exporter tests. It waits for a line on stdin (so pyprobe serve has found
# it first), then: fib(18) (8361 calls), 7 explicit collections with automatic gc off, 3 fresh modules loaded,
# 5 audit events of its own name, about a second of CPU in spin(); prints "done" and sleeps until killed.
import gc, os, sys, tempfile, time

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def spin(seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n

gc.disable()
folder = tempfile.mkdtemp()
for name in ("pp_mod_a", "pp_mod_b", "pp_mod_c"):
    with open(os.path.join(folder, name + ".py"), "w") as f:
        f.write("VALUE = 1\n")
sys.path.insert(0, folder)
print("ready", flush=True)
sys.stdin.readline()
fib(18)
for _ in range(7):
    gc.collect()
import pp_mod_a, pp_mod_b, pp_mod_c
for i in range(5):
    sys.audit("pyprobe.test", i)
spin(1.0)
print("done", flush=True)
time.sleep(600)
