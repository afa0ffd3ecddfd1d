"""A process that execs itself (pyprobe's eval-frame memo tests): the same pid, a new image, the same addresses.

Started with ASLR off (setarch -R, a personality exec keeps) and a last argument "w". Image w prints "ready", waits for
a line on stdin and execs image a: the exact command line it was started with (read from /proc/self/cmdline, so an
interpreter run through its own loader comes back the same way) with the last argument "a". Image a compiles FUNCTIONS
functions, function i named a<i:03d> in file /gen/a_<i:03d>.py, runs each module once, calls each function i % 3 + 1
times (from C) and keeps it alive, prints "ids a ..." with the id of each function's code object, and execs image b
the same way, which does the same with b<i:03d> in /gen/b_<i:03d>.py, prints "ids b ...", then waits for a line.
Images a and b are started the same way (an exec by a traced image: the tracer may act at the new interpreter's start,
and image w was started before the tracer came) and run the same code with names and arguments of the same lengths,
so the allocator hands out the same addresses: b's code objects, strs and (3.12+) co_version values are where and
what a's were, and only their text differs.
"""
import os
import sys

FUNCTIONS = 50


def exec_image(phase):
    with open("/proc/self/cmdline", "rb") as f:
        command = f.read().split(b"\0")[:-1]
    os.execv(command[0], command[:-1] + [phase])


phase = sys.argv[-1]
if phase == "w":
    print("ready", flush=True)
    sys.stdin.readline()
    exec_image(b"a")
functions = []
for i in range(FUNCTIONS):
    name = "%s%03d" % (phase, i)
    filename = "/gen/%s_%03d.py" % (phase, i)
    namespace = {}
    exec(compile("def %s(n):\n    return n + 1\n" % name, filename, "exec"), namespace)
    function = namespace[name]
    # Called from C (map), never from Python code: each call is a new entry into _PyEval_EvalFrameDefault on 3.11+
    # even where the eval-frame hook is not set (pyprobe set it in an image that exec replaced), which inlines a
    # Python-to-Python call.
    list(map(function, range(i % 3 + 1)))
    functions.append(function)
print("ids", phase, " ".join(str(id(f.__code__)) for f in functions), flush=True)
if phase == "a":
    exec_image(b"b")
sys.stdin.readline()
