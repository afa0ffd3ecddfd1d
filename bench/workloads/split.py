"""pyprobe bench workload for profilers: a fixed amount of CPU work split 75/25 between hot() and cold().

Usage: python split.py ITERATIONS [UNIT]

Each iteration calls hot() (3*UNIT rounds of the same arithmetic loop) and cold() (UNIT rounds), so
by construction hot() has 3/4 of the CPU. Prints "ready PID", waits for one line on stdin ("go") so a
profiler can attach first, runs the iterations and prints
    result pid=P iterations=I start=S end=E cpu=C hot=H cold=K
(S, E: perf_counter seconds; C: process CPU seconds of the timed work; H, K: CPU seconds measured
inside hot() and cold() with thread_time, the true split), then waits for stdin to close before
exiting, so the bench can read the profiler's figures while it is still attached.
"""
import os
import sys
from time import perf_counter, process_time, thread_time


def hot(unit):
    s = 0
    for i in range(3 * unit):
        s += i * i
    return s


def cold(unit):
    s = 0
    for i in range(unit):
        s += i * i
    return s


def main():
    iterations = int(sys.argv[1])
    unit = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    print("ready %d" % os.getpid(), flush=True)
    sys.stdin.readline()
    hot_s = cold_s = 0.0
    c0 = process_time()
    t0 = perf_counter()
    for _ in range(iterations):
        a = thread_time()
        hot(unit)
        b = thread_time()
        cold(unit)
        c = thread_time()
        hot_s += b - a
        cold_s += c - b
    t1 = perf_counter()
    c1 = process_time()
    print("result pid=%d iterations=%d start=%.9f end=%.9f cpu=%.6f hot=%.6f cold=%.6f"
          % (os.getpid(), iterations, t0, t1, c1 - c0, hot_s, cold_s), flush=True)
    sys.stdin.read()


main()
