# N sleeping threads beside one that spins and notes the longest gap between two of its loop turns: how long the program
# was stopped. The main thread reads commands on stdin: "reset" zeroes the gap, "report" prints "gap MS".
# Usage: threads.py N. Prints "ready PID" first.
import os
import sys
import threading
import time

for i in range(int(sys.argv[1])):
    threading.Thread(target=time.sleep, args=(3600,), name=f"sleeper-{i}", daemon=True).start()

longest = 0.0


def spin():
    global longest
    last = time.perf_counter()
    while True:
        now = time.perf_counter()
        if now - last > longest:
            longest = now - last
        last = now


threading.Thread(target=spin, name="spinner", daemon=True).start()
print("ready", os.getpid(), flush=True)
for line in sys.stdin:
    if line.strip() == "reset":
        longest = 0.0
        print("reset", flush=True)
    elif line.strip() == "report":
        print("gap %.3f" % (longest * 1000), flush=True)
