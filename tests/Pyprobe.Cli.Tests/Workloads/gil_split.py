# Two threads on two CPUs: the main thread spins in Python (holding the GIL whenever it runs), "hasher" hashes 16 MiB at a
# time with the GIL released (on a CPU, without it, almost all the time). Prints "ready MAIN HASHER" (their tids) first.
import hashlib
import threading

data = b"x" * (16 << 20)


def hasher():
    while True:
        hashlib.sha256(data).digest()


def spin():
    while True:
        sum(range(1000))


thread = threading.Thread(target=hasher, name="hasher", daemon=True)
thread.start()
print("ready", threading.get_native_id(), thread.native_id, flush=True)
spin()
