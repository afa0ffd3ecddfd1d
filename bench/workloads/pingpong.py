# Two threads hand a byte back and forth through pipes: every round trip puts each thread to sleep once
# (two switch-outs and two switch-ins of this process). Prints the microseconds per round trip.
import os, sys, threading, time
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
a_r, a_w = os.pipe()
b_r, b_w = os.pipe()
def pong():
    for _ in range(rounds):
        os.read(a_r, 1)
        os.write(b_w, b"x")
def ping():
    for _ in range(rounds):
        os.write(a_w, b"x")
        os.read(b_r, 1)
if len(sys.argv) > 2:
    sys.stdin.readline()  # wait until the profiler is attached
t = threading.Thread(target=pong)
t.start()
start = time.perf_counter()
ping()
t.join()
print(f"{(time.perf_counter() - start) / rounds * 1e6:.2f}", flush=True)
if len(sys.argv) > 2:
    sys.stdin.readline()  # stay until the profiler's counters are read
