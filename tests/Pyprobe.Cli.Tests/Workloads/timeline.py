"""A workload for pyprobe's timeline tests, with every count known.

After "ready", a line on stdin starts: fib(18) = 8361 calls of fib; 3 calls of gc.collect() with automatic
collection off, so exactly 3 collections (generation 2); the first import of json (and the json.* modules it
loads); 2 audit events pyprobe.timeline (arguments 0 and 1); then "sleeping" and a call of sleeper that lasts far longer than the tracer, so it is still open when
tracing stops. The main thread is named "timeline-main" in Python (threading imported before "ready").
"""
import gc
import sys
import threading
import time

threading.current_thread().name = "timeline-main"

gc.disable()


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def collect():
    for _ in range(3):
        gc.collect()


def load():
    import json
    return json.dumps([1])


def sleeper():
    time.sleep(120)


print("ready", flush=True)
sys.stdin.readline()
fib(18)
collect()
load()
for i in range(2):
    sys.audit("pyprobe.timeline", i)
print("sleeping", flush=True)
sleeper()
