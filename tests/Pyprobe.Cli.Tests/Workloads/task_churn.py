# Short-lived asyncio tasks, one after another, for record --tasks: each burns SECONDS (argv[1], 0.02 unless given) in its
# coroutine and ends, so the next one's task, coroutine and name often take the addresses one before freed. Tasks
# even-N run even_job, odd-N odd_job, and each burns N % 3 + 1 calls of nest() deep: a sample in one is under its own
# task when its kind and depth agree with the task's name.
import asyncio, sys, time

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 0.02
# With "unnamed" (argv[2]) the tasks go by asyncio's own names, Task-2 on (main's is Task-1): task N is Task-(N + 2).
UNNAMED = len(sys.argv) > 2 and sys.argv[2] == "unnamed"


def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def nest(depth):
    if depth > 1:
        nest(depth - 1)
    else:
        burn(SECONDS)


async def even_job(n):
    nest(n % 3 + 1)


async def odd_job(n):
    nest(n % 3 + 1)


async def main():
    n = 0
    while True:
        even = n % 2 == 0
        await asyncio.create_task(even_job(n) if even else odd_job(n), name=None if UNNAMED else f"{'even' if even else 'odd'}-{n}")
        n += 1


asyncio.run(main())
