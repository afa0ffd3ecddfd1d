"""Subinterpreters made one after another (pyprobe's eval-frame memo tests).

After "ready", a line on stdin starts ROUNDS rounds. Round k makes a subinterpreter that defines a function named
sub<k> (three digits: every name the same length) and calls it 3 times, prints the id of its code object
("code ID"), and is destroyed. From 3.13 each interpreter counts its code objects' versions from its own start and
the rounds allocate alike, so a round's function can get the address (and the version) an earlier round's had.
Then it prints "done" and waits for a second line before exiting. The module that makes subinterpreters:
_xxsubinterpreters (3.12), _interpreters (3.13), concurrent.interpreters (3.14+).
"""
import sys

ROUNDS = 20

CODE = """
import sys
def sub%03d(n):
    return n + 1
for _ in range(3):
    sub%03d(0)
print("code", id(sub%03d.__code__), flush=True)
"""


def run_and_close(code):
    minor = sys.version_info[1]
    if minor == 12:
        import _xxsubinterpreters
        handle = _xxsubinterpreters.create()
        _xxsubinterpreters.run_string(handle, code)
        _xxsubinterpreters.destroy(handle)
    elif minor == 13:
        import _interpreters
        handle = _interpreters.create()
        _interpreters.exec(handle, code)
        _interpreters.destroy(handle)
    else:
        from concurrent import interpreters
        handle = interpreters.create()
        handle.exec(code)
        handle.close()


print("ready", flush=True)
sys.stdin.readline()
for k in range(ROUNDS):
    run_and_close(CODE % (k, k, k))
print("done", flush=True)
sys.stdin.readline()
