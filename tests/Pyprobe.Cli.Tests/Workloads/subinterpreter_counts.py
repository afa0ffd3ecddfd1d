"""A workload that makes a subinterpreter after a tracer attached (pyprobe's eval-frame tests).

After "ready", a line on stdin starts: 1000 calls of tick in the main interpreter; then a new subinterpreter
runs fib(18) = 8361 calls of fib (fib exists only there); then 500 more calls of tick in the main interpreter.
It prints "done" and waits for a second line before exiting, the subinterpreter still alive, so both interpreters'
memory can be read after the tracer left. The module that makes subinterpreters: _xxsubinterpreters (3.12), _interpreters (3.13),
concurrent.interpreters (3.14+). With --close the subinterpreter is destroyed right after its work.
"""
import sys

FIB = """
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

fib(18)
"""


def tick():
    pass


def run_in_new_interpreter(code):
    """Returns the new interpreter's handle: while it is referenced, the interpreter lives."""
    minor = sys.version_info[1]
    if minor == 12:
        import _xxsubinterpreters
        handle = _xxsubinterpreters.create()
        _xxsubinterpreters.run_string(handle, code)
    elif minor == 13:
        import _interpreters
        handle = _interpreters.create()
        _interpreters.exec(handle, code)
    else:
        from concurrent import interpreters
        handle = interpreters.create()
        handle.exec(code)
    return handle


def close(handle):
    minor = sys.version_info[1]
    if minor == 12:
        import _xxsubinterpreters
        _xxsubinterpreters.destroy(handle)
    elif minor == 13:
        import _interpreters
        _interpreters.destroy(handle)
    else:
        handle.close()


print("ready", flush=True)
sys.stdin.readline()
for _ in range(1000):
    tick()
subinterpreter = run_in_new_interpreter(FIB)
if "--close" in sys.argv:
    close(subinterpreter)
for _ in range(500):
    tick()
print("done", flush=True)
sys.stdin.readline()
