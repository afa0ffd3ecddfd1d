# Known shapes for the sampling profiler, each on its own thread, for SECONDS (argv[1]):
#   recursion: 150 nested calls of descend(), then hot_loop() whose hot line is the sum() call;
#   generator: a consumer draining produce(), a generator doing the work;
#   coroutine: an asyncio task crunch() doing the work between awaits;
#   sleeper:   sleeps the whole time, so a CPU profile never sees it.
# Prints "tids recursion=.. generator=.. coroutine=.. sleeper=.." when all threads run.
import asyncio
import sys
import threading
import time

SECONDS = float(sys.argv[1])
DEADLINE = time.monotonic() + SECONDS
tids = {}
started = threading.Barrier(5)


def hot_loop():
    i = 0
    while time.monotonic() < DEADLINE:
        i += 1
        total = sum(range(3000))  # hot line
    return i


def descend(depth):
    if depth == 0:
        return hot_loop()
    return descend(depth - 1)


def recursion():
    tids["recursion"] = threading.get_native_id()
    started.wait()
    descend(149)


def produce():
    while time.monotonic() < DEADLINE:
        yield sum(range(3000))


def generator():
    tids["generator"] = threading.get_native_id()
    started.wait()
    for _ in produce():
        pass


async def crunch():
    while time.monotonic() < DEADLINE:
        sum(range(3000))
        await asyncio.sleep(0)


def coroutine():
    tids["coroutine"] = threading.get_native_id()
    started.wait()
    asyncio.run(crunch())


def sleeper():
    tids["sleeper"] = threading.get_native_id()
    started.wait()
    time.sleep(SECONDS)


threads = [threading.Thread(target=f, name=f.__name__) for f in (recursion, generator, coroutine, sleeper)]
for t in threads:
    t.start()
started.wait()
print("tids " + " ".join(f"{k}={v}" for k, v in sorted(tids.items())), flush=True)
for t in threads:
    t.join()
