"""An aiohttp server answering an aiohttp client, on whatever loop runs it.

    python -m rloop examples/aiohttp_app.py
"""

import asyncio

from aiohttp import ClientSession, web


async def hello(request: web.Request) -> web.Response:
    name = request.match_info.get("name", "world")
    return web.Response(text=f"hello, {name}")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def main() -> None:
    app = web.Application()
    app.add_routes([web.get("/hello/{name}", hello), web.post("/echo", echo)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession() as session:
            async with session.get(f"{base}/hello/rloop") as resp:
                print(resp.status, await resp.text())
            body = bytes(range(256)) * 4096
            async with session.post(f"{base}/echo", data=body) as resp:
                echoed = await resp.read()
                print(resp.status, f"echoed {len(echoed)} bytes, intact: {echoed == body}")

            async def fetch(i: int) -> str:
                async with session.get(f"{base}/hello/{i}") as resp:
                    return await resp.text()

            texts = await asyncio.gather(*[fetch(i) for i in range(50)])
            ok = texts == [f"hello, {i}" for i in range(50)]
            print(f"50 concurrent requests answered in order: {ok}")
    finally:
        await runner.cleanup()
    print(f"loop: {type(asyncio.get_running_loop()).__name__}")


if __name__ == "__main__":
    asyncio.run(main())
