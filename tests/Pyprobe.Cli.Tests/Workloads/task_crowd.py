# Many asyncio tasks, and more made later, for record --tasks: main makes COUNT (argv[1], 2000 unless given) tasks that
# wait for an event that never comes (a read of the process's tasks then costs milliseconds, so reads are held back),
# then, one after another, tasks late-N that burn the CPU 2 ms at a time for SECONDS (argv[2], 1.5 unless given), each
# awaited by main. Each sample of a late task belongs under main, where main awaits it:
#   task main;main;task late-N;late;burn
import asyncio, sys, time

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5


def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def idle(event):
    await event.wait()


async def late():
    end = time.perf_counter() + SECONDS
    while time.perf_counter() < end:
        burn(0.002)
        await asyncio.sleep(0)


async def main():
    asyncio.current_task().set_name("main")
    event = asyncio.Event()
    crowd = [asyncio.create_task(idle(event)) for _ in range(COUNT)]
    print("ready", flush=True)
    for n in range(100):
        await asyncio.create_task(late(), name=f"late-{n}")


asyncio.run(main())
