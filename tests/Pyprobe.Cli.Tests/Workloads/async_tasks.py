# asyncio tasks in known places, for dump --tasks. A second thread runs a loop of its own (task 'elsewhere'). Once
# every task is in its await, the spinner task prints 'ready' and keeps the main loop (and the main thread) busy in
# its own frame until killed, the yielder task left in asyncio.sleep(0)'s bare yield (and before 3.11 the legacy
# generator-based task at its own).
import asyncio
import sys
import threading
import types


async def leaf(event):
    await event.wait()


async def fetch(event, url):
    attempt = 3
    await leaf(event)


async def worker(event):
    await fetch(event, "https://example.org/a")


async def nap():
    await asyncio.sleep(3600)


async def follow(task):
    await task


async def grouped(event):
    async with asyncio.TaskGroup() as group:
        group.create_task(event.wait(), name="group-child")


async def ticks(event):
    while True:
        await event.wait()
        yield 1


async def consume(event):
    async for _ in ticks(event):
        pass


async def elsewhere(started):
    asyncio.current_task().set_name("elsewhere")
    asyncio.get_running_loop().call_soon(started.set)  # runs once this task waits in its sleep
    await asyncio.sleep(3600)


async def yielder():
    while True:
        await asyncio.sleep(0)  # a bare yield inside (__sleep0): awaits nothing


@types.coroutine
def legacy():
    while True:
        yield  # a generator-based coroutine's bare yield (3.8-3.10 run one as a task): awaits nothing


def spin():
    while True:
        pass


async def spinner():
    print("ready", flush=True)
    spin()


async def main():
    started = threading.Event()
    threading.Thread(target=lambda: asyncio.run(elsewhere(started)), name="loop-thread", daemon=True).start()
    started.wait()
    event = asyncio.Event()
    a = asyncio.ensure_future(worker(event))
    a.set_name("worker-a")
    helper = asyncio.ensure_future(nap())
    helper.set_name("helper")
    b = asyncio.ensure_future(follow(helper))
    b.set_name("worker-b")
    asyncio.ensure_future(consume(event)).set_name("consumer")
    if sys.version_info >= (3, 11):
        asyncio.ensure_future(grouped(event)).set_name("group-parent")
    asyncio.ensure_future(yielder()).set_name("yielder")
    if sys.version_info < (3, 11):
        asyncio.ensure_future(legacy()).set_name("legacy")
    for _ in range(3):
        await asyncio.sleep(0)
    asyncio.ensure_future(spinner()).set_name("spinner")
    await asyncio.gather(a, b)


asyncio.run(main())
