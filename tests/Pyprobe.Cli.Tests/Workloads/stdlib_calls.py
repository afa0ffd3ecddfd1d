"""A standard-library workload for `calls` against CPython's own profiler hook (pyprobe's eval-frame tests).

Imports first, prints "ready", waits for a line on stdin, runs difflib.unified_diff, json round trips and re,
prints "done"; with the argument "profile" it counts sys.setprofile "call" events per code object (filename,
qualified name where the version has one, first line) around the work and prints them as JSON after "done".
"""
import difflib
import json
import re
import sys


def work():
    a = [f"line {i} {'x' * (i % 7)}\n" for i in range(400)]
    b = [line.replace("3", "three") for line in a]
    diff = list(difflib.unified_diff(a, b, "a", "b"))
    for i in range(200):
        text = json.dumps({"i": i, "items": list(range(i % 10)), "name": f"n{i}"})
        json.loads(text)
    pattern = re.compile(r"(\w+) (\d+)")
    found = [pattern.findall(line) for line in diff]
    return len(diff), len(found)


counts = {}


def profiler(frame, event, arg):
    if event == "call":
        code = frame.f_code
        key = f"{code.co_filename}\t{getattr(code, 'co_qualname', code.co_name)}\t{code.co_firstlineno}"
        counts[key] = counts.get(key, 0) + 1


profile = sys.argv[1:] == ["profile"]
print("ready", flush=True)
sys.stdin.readline()
if profile:
    sys.setprofile(profiler)
result = work()
if profile:
    sys.setprofile(None)
print("done", result, flush=True)
if profile:
    print(json.dumps(counts), flush=True)
sys.stdin.readline()
