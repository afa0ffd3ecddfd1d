"""pyprobe bench workload: calls leaf(x) N times and times itself with time.perf_counter.

Usage: python leaf.py N [--rate CALLS_PER_S] [--threads T] [--procs P] [--forever [--sleeping]]

Prints "ready PID [CHILD_PIDS...]", then waits for one line on stdin ("go") before calling anything,
so a tracer can attach with -p PID first. Prints one "result ..." line per worker:
    result pid=P calls=C start=S end=E user=U sys=Y
(S, E: perf_counter seconds, CLOCK_MONOTONIC; U, Y: CPU seconds the process used in user space and in the kernel
(uprobe traps and BPF included) during the calls, from getrusage: per process, so exact with --procs)
After "go" the only Python-level function calls are leaf() itself and one work() per worker, so a
tracer of function__entry should see exactly calls + workers events (plus interpreter shutdown,
which the bench measures through pyprobe's exact count).
--rate paces the calls with a busy-wait on perf_counter (a C function: no extra Python calls).
--forever (with --rate) calls leaf at that rate until stdin closes (start-up benchmark).
--sleeping (with --forever) paces with time.sleep instead: the process leaves its CPU idle between calls.
"""
import os
import resource
import sys
import _thread
from time import perf_counter, sleep


def leaf(x):
    return x + 1


def work(n, rate, out):
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    if rate <= 0:
        t0 = perf_counter()
        for i in range(n):
            leaf(i)
        t1 = perf_counter()
    else:
        chunk = max(1, int(rate // 20000))
        period = chunk / rate
        t0 = perf_counter()
        deadline = t0
        i = 0
        while i < n:
            while perf_counter() < deadline:
                pass
            for j in range(chunk):
                leaf(j)
            i += chunk
            deadline += period
        t1 = perf_counter()
        n = i
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    out.append("result pid=%d calls=%d start=%.9f end=%.9f user=%.6f sys=%.6f"
               % (os.getpid(), n, t0, t1, r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime))


def main():
    args = sys.argv[1:]
    n = int(args[0])
    rate = float(args[args.index("--rate") + 1]) if "--rate" in args else 0.0
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 1
    procs = int(args[args.index("--procs") + 1]) if "--procs" in args else 0
    forever = "--forever" in args
    sleeping = "--sleeping" in args
    out = []

    if forever:
        # Start-up benchmark: leaf at a steady rate until stdin closes; stdin is read by a thread.
        stop = _thread.allocate_lock()
        stop.acquire()
        def reader():
            sys.stdin.read()
            stop.release()
        _thread.start_new_thread(reader, ())
        print("ready %d" % os.getpid(), flush=True)
        period = 1.0 / rate
        deadline = perf_counter()
        while not stop.acquire(False):
            if sleeping:
                pause = deadline - perf_counter()
                if pause > 0:
                    sleep(pause)
            while perf_counter() < deadline:
                pass
            leaf(0)
            deadline += period
        return

    if procs > 0:
        # P children, each runs n // P calls once the parent writes a byte per child to the gate.
        gate_r, gate_w = os.pipe()
        res_r, res_w = os.pipe()
        kids = []
        for _ in range(procs):
            pid = os.fork()
            if pid == 0:
                os.close(gate_w)
                os.read(gate_r, 1)
                work(n // procs, rate, out)
                os.write(res_w, (out[0] + "\n").encode())
                os._exit(0)
            kids.append(pid)
        os.close(res_w)
        print("ready %d %s" % (os.getpid(), " ".join(map(str, kids))), flush=True)
        sys.stdin.readline()
        os.write(gate_w, b"g" * procs)
        data = b""
        while True:
            chunk = os.read(res_r, 65536)
            if not chunk:
                break
            data += chunk
        for pid in kids:
            os.waitpid(pid, 0)
        sys.stdout.write(data.decode())
        sys.stdout.flush()
        return

    # T threads (T=1: the main thread itself), released together by a lock after "go".
    gate = _thread.allocate_lock()
    gate.acquire()
    done = []
    per = n // threads
    def worker():
        gate.acquire()
        gate.release()
        work(per, rate, out)
        done.append(1)
    if threads > 1:
        for _ in range(threads):
            _thread.start_new_thread(worker, ())
    print("ready %d" % os.getpid(), flush=True)
    sys.stdin.readline()
    if threads > 1:
        gate.release()
        while len(done) < threads:
            _thread.allocate_lock().acquire(True, 0.001)
    else:
        work(n, rate, out)
    sys.stdout.write("".join(line + "\n" for line in out))
    sys.stdout.flush()


main()
