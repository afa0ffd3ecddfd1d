# asyncio tasks awaiting each other, for record --tasks' awaiter chains. main (a TaskGroup) runs left, right, waiter-a and
# waiter-b; left awaits the task leaf; waiter-a and waiter-b both await the task shared. The CPU is burnt in turns:
# 2.4 ms in leaf, 0.8 ms in right, 0.8 ms in shared: 60/20/20, each under its chain of awaiters (a round of 4 ms, so
# that samples at 199 Hz, 5.025 ms apart, move through it: a round of 5 ms would keep them in one task for a second):
#   task main;task left;task leaf    task main;task right    task main;task waiter-a;task shared (2 parents)
import asyncio, time


def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def spin(seconds):
    while True:
        burn(seconds)
        await asyncio.sleep(0)


async def left():
    await asyncio.create_task(spin(0.0024), name="leaf")


async def waiter(shared):
    await shared


async def main():
    asyncio.current_task().set_name("main")
    async with asyncio.TaskGroup() as group:
        group.create_task(left(), name="left")
        group.create_task(spin(0.0008), name="right")
        shared = asyncio.create_task(spin(0.0008), name="shared")
        group.create_task(waiter(shared), name="waiter-a")
        group.create_task(waiter(shared), name="waiter-b")
        print("ready", flush=True)  # the tasks are made and run from here on: a test that attaches waits for this line


asyncio.run(main())
