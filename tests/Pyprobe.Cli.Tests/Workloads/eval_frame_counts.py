"""A workload whose function activations are known exactly (pyprobe's eval-frame tests).

After "ready", a line on stdin starts: fib(18) = 8361 calls of fib; 1000 calls of Counter.tick; a generator
of 1000 items consumed by a for loop = 1001 activations of numbers (first start, 999 resumes after a yield,
and the resume that ends it); 1 call of fails (raises, caught); deep(499) = 500 nested calls of deep; an asyncio task
running work = 2 activations (its start, and its resume after sleep(0)) consuming the async generator ticks = 4
(first start, 2 resumes after a yield, the resume that ends it); 1000 objects of Point = 1000 activations of
Point.__init__, each calling norm once (3.13 runs a specialised class call's __init__ inline, unseen by the eval-frame
hook); 10 objects of Broken whose __init__ raises (caught) = 10; 10 of Lazy, whose __init__ is a generator function, so
each call only creates a generator (no activation) and raises TypeError (before 3.12 collecting that never-started
generator closes it by a throw into its frame: 1 activation each). Creating a generator, coroutine or async generator
is not an activation (3.11+ run it in a frame of its own; CPython's profiler and 3.9's probes do not report it).
It then prints "done" and waits for a second line before exiting, so its memory can be read after the tracer left.
"""
import asyncio
import sys


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Counter:
    def __init__(self):
        self.n = 0

    def tick(self):
        self.n += 1


def numbers():
    for i in range(1000):
        yield i


def fails():
    raise ValueError("expected")


def deep(n):
    return 0 if n == 0 else deep(n - 1) + 1


def norm(x):
    return abs(x)


class Point:
    def __init__(self, x):
        self.x = norm(x)


class Broken:
    def __init__(self):
        raise KeyError("expected")


class Lazy:
    def __init__(self):
        yield


async def ticks():
    for i in range(3):
        yield i


async def work():
    await asyncio.sleep(0)
    total = 0
    async for i in ticks():
        total += i
    return total


print("ready", flush=True)
sys.stdin.readline()
fib(18)
counter = Counter()
for _ in range(1000):
    counter.tick()
total = 0
for x in numbers():
    total += x
try:
    fails()
except ValueError:
    pass
for i in range(1000):
    Point(i)
for _ in range(10):
    try:
        Broken()
    except KeyError:
        pass
for _ in range(10):
    try:
        Lazy()
    except TypeError:
        pass
assert deep(499) == 499
print("done", total, counter.n, asyncio.run(work()), flush=True)
sys.stdin.readline()
