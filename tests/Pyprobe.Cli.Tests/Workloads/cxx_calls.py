# Calls run_kernel() of the C++ library at argv[1] (built by the test from cxx_kernel.cpp) from work(), for 200 ms at a
# time, forever; ctypes lets go of the GIL for the call, so nearly every moment is spent in the library's C++ frames.
import ctypes
import sys

lib = ctypes.CDLL(sys.argv[1])
lib.run_kernel.restype = ctypes.c_double
lib.run_kernel.argtypes = [ctypes.c_long]


def work():
    return lib.run_kernel(200)


print("ready", flush=True)
while True:
    work()
