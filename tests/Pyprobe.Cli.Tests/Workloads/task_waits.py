# asyncio tasks that wait, for record --tasks --idle: main (a TaskGroup) runs worker, sleeper and blocked. worker burns
# the CPU 2 ms at a time and yields; sleeper sleeps 10 ms at a time; blocked waits for an event that never comes. On the
# wall clock blocked and sleeper wait all the time, each at its own await:
#   task main;main;TaskGroup.__aexit__;TaskGroup._aexit;task blocked;blocked;Event.wait
#   task main;main;TaskGroup.__aexit__;TaskGroup._aexit;task sleeper;sleeper;sleep
import asyncio, time


def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def worker():
    while True:
        burn(0.002)
        await asyncio.sleep(0)


async def sleeper():
    while True:
        await asyncio.sleep(0.01)


async def blocked(event):
    await event.wait()


async def main():
    asyncio.current_task().set_name("main")
    event = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        group.create_task(worker(), name="worker")
        group.create_task(sleeper(), name="sleeper")
        group.create_task(blocked(event), name="blocked")
        print("ready", flush=True)  # the tasks are made and run from here on: a test that attaches waits for this line


asyncio.run(main())
