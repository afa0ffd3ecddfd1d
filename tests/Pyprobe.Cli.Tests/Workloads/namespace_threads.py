# Two threads in known functions, for the pid-namespace tests. The main thread burns its own CPU time in heavy()
# three times as long as in light(), for SECONDS (argv[1]) of wall time; a thread named "spinner" burns in
# spinner() until the process ends. First prints "tids MAIN SPINNER": the threads' ids as the process sees them.
import sys
import threading
import time


def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def heavy():
    spin(0.03)


def light():
    spin(0.01)


def spinner():
    while True:
        pass


thread = threading.Thread(target=spinner, name="spinner", daemon=True)
thread.start()
print("tids", threading.get_native_id(), thread.native_id, flush=True)
stop = time.monotonic() + float(sys.argv[1])
while time.monotonic() < stop:
    heavy()
    light()
