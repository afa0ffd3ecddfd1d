"""pyprobe demo: a tiny asyncio program to trace.

Usage: python3 demo/t.py [ROUNDS]   (runs forever when ROUNDS is not given)
"""
import asyncio
import sys


async def hello(i):
    print('hello', i, flush=True)
    await asyncio.sleep(1)
    print('bye', i, flush=True)


async def main(rounds=None):
    n = 0
    while rounds is None or n < rounds:
        await asyncio.gather(hello(1), hello(2))
        n += 1


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else None))
