# N asyncio tasks, each three coroutines deep in an Event's wait, and a gather of them all; prints 'ready' once all wait.
import asyncio
import sys


async def inner(event):
    await event.wait()


async def middle(event):
    await inner(event)


async def outer(event):
    await middle(event)


async def main(n):
    event = asyncio.Event()
    tasks = [asyncio.ensure_future(outer(event)) for _ in range(n)]
    await asyncio.sleep(0)
    print("ready", flush=True)
    await asyncio.gather(*tasks)


asyncio.run(main(int(sys.argv[1])))
