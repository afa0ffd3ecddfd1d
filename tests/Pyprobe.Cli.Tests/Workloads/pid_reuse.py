# Two children, one after the other, under the same pid: the first defines and calls alpha() 3 times and exits; the
# second, forked once the kernel is told to hand out that pid again (ns_last_pid, root), calls bravo() 5 times. The
# parent allocates as little as it can between the two forks, so that both children compile the same-sized source from
# the same heap and bravo's code object and strs take alpha's addresses.
# Prints "child PID CODE NAME FILENAME" per child (ids of the code object and its two strs), then "done"; or "retry"
# when another process took the pid between the write and the fork (the caller runs it again).
import gc
import os

gc.disable()
LAST_PID = "/proc/sys/kernel/ns_last_pid"
# The names are made in the child: as constants of this script they would be interned here, at addresses of their own.
ALPHA, BRAVO = (97, 108, 112, 104, 97), (98, 114, 97, 118, 111)


def child(letters, calls):
    name = bytes(letters).decode()
    namespace = {}
    exec(compile("def " + name + "():\n    return 1\n", "/generated/" + name + ".py", "exec"), namespace)
    function = namespace[name]
    code = function.__code__
    for _ in range(calls):
        function()
    print("child", os.getpid(), id(code), id(code.co_name), id(code.co_filename), flush=True)
    os._exit(0)


first = os.fork()
if first == 0:
    child(ALPHA, 3)
os.waitpid(first, 0)
fd = os.open(LAST_PID, os.O_WRONLY)
os.write(fd, b"%d" % (first - 1))
os.close(fd)
second = os.fork()
if second == 0:
    if os.getpid() == first:
        child(BRAVO, 5)
    os._exit(0)
os.waitpid(second, 0)
print("done" if second == first else "retry", flush=True)
