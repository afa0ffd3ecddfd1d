"""Code objects whose memory is reused (pyprobe's eval-frame memo tests).

After "ready", a line on stdin starts ROUNDS rounds. Round i compiles, in a file of its own (/generated/round_i.py),
a module defining a function of its own name (r<i>_ and i % 7 x's), runs it (one activation of <module>) and calls the
function i % 3 + 1 times, then drops both: pymalloc hands the freed code objects' and strs' blocks to the next rounds,
so an address names different code objects and strings over time. Every other round the filename's hash is computed
first (a str's hash is computed lazily; a code object's co_filename on 3.12 usually has none). It prints the id of each
round's function code object ("ids ..."), so a test can see the reuse, then waits for a second line before exiting.
"""
import sys

ROUNDS = 300

print("ready", flush=True)
sys.stdin.readline()
ids = []
for i in range(ROUNDS):
    name = "r%d_%s" % (i, "x" * (i % 7))
    filename = "/generated/round_%d.py" % i
    if i % 2 == 0:
        hash(filename)
    namespace = {}
    exec(compile("def %s(n):\n    return n + 1\n" % name, filename, "exec"), namespace)
    function = namespace[name]
    for _ in range(i % 3 + 1):
        function(i)
    ids.append(id(function.__code__))
    namespace.clear()  # the function and its globals form a cycle: break it, so they are freed now
    del function, namespace
print("ids", " ".join(map(str, ids)), flush=True)
sys.stdin.readline()
