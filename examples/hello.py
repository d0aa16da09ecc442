"""A small asyncio app: timers, tasks, a queue and an executor call.

    python -m rloop examples/hello.py
"""

import asyncio
import time


async def producer(queue: "asyncio.Queue[int]", n: int) -> None:
    for i in range(n):
        await queue.put(i)
        await asyncio.sleep(0.01)
    await queue.put(-1)


async def consumer(queue: "asyncio.Queue[int]") -> int:
    total = 0
    while (item := await queue.get()) != -1:
        total += item
    return total


async def main() -> None:
    loop = asyncio.get_running_loop()
    print(f"running on {type(loop).__module__}.{type(loop).__name__}")
    started = loop.time()
    queue: asyncio.Queue[int] = asyncio.Queue()
    _, total = await asyncio.gather(producer(queue, 10), consumer(queue))
    print(f"sum of 0..9 through a queue: {total}")
    slept = await loop.run_in_executor(None, lambda: (time.sleep(0.05), "slept in a thread")[1])
    print(slept)
    async with asyncio.timeout(1):
        await asyncio.sleep(0.05)
    print(f"done in {loop.time() - started:.2f}s")


if __name__ == "__main__":
    asyncio.run(main())
