"""Code objects whose memory is reused (pyprobe's eval-frame memo tests).

After "ready", a line on stdin starts ROUNDS rounds. Round i compiles, in a file of its own (/generated/round_i.py),
a module defining a function of its own name (r<i>_ and i % 7 x's), runs it (one activation of <module>) and calls the
function i % 3 + 1 times, then drops both: pymalloc hands the freed code objects' and strs' blocks to the next rounds,
so an address names different code objects and strings over time. Every other round the filename's hash is computed
first (a str's hash is computed lazily; a code object's co_filename on 3.12 usually has none). It prints the id of each
round's function code object ("ids ..."), so a test can see the reuse, then waits for a second line before exiting.

With the argument "wide" the names are not ASCII: round i's function is r<i>_ and i % 7 + 1 times é, 函 or 𠀀 and its
file /generated/röund_i.py, /generated/回合_i.py or /generated/🐍_i.py (i % 3: a str of one, two or four bytes a
character, as CPython holds it).
"""
import sys

ROUNDS = 300
WIDE = sys.argv[1:] == ["wide"]
# No function of the workload's own runs in the rounds but the generated ones (calls are counted).
SUFFIXES = ["é", "函", "𠀀"] if WIDE else ["x", "x", "x"]
FILES = ["röund", "回合", "🐍"] if WIDE else ["round"] * 3
if WIDE:
    import unicodedata  # noqa: F401 -- the parser imports it for the first identifier that is not ASCII: now, not in a round

print("ready", flush=True)
sys.stdin.readline()
ids = []
for i in range(ROUNDS):
    name = "r%d_%s" % (i, SUFFIXES[i % 3] * (i % 7 + WIDE))
    filename = "/generated/%s_%d.py" % (FILES[i % 3], i)
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
