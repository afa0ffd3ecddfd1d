# A thread Python does not know: started with pthread_create on a C function that spins, from the library whose path
# is argv[1] (built by the test: spin_forever() stores its thread id in spin_tid, then loops); the main thread sleeps.
# Prints "ready TID" with the C thread's id.
import ctypes
import sys
import time

lib = ctypes.CDLL(sys.argv[1])
libc = ctypes.CDLL(None)
handle = ctypes.c_ulong()
if libc.pthread_create(ctypes.byref(handle), None, lib.spin_forever, None) != 0:
    raise SystemExit("pthread_create failed")
tid = ctypes.c_int.in_dll(lib, "spin_tid")
while tid.value == 0:
    time.sleep(0.01)
print("ready", tid.value, flush=True)
while True:
    time.sleep(1)
