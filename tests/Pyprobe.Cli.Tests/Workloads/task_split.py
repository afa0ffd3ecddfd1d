# Two asyncio tasks burning the CPU in turns, 3 ms (alpha) to 1 ms (beta): 75/25, for record --tasks.
import asyncio, time

def burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass

async def alpha():
    while True:
        burn(0.003)
        await asyncio.sleep(0)

async def beta():
    while True:
        burn(0.001)
        await asyncio.sleep(0)

async def main():
    a = asyncio.create_task(alpha(), name="alpha")
    b = asyncio.create_task(beta(), name="beta")
    await asyncio.gather(a, b)

asyncio.run(main())
