"""A small ASGI app for uvicorn:

    uvicorn --loop rloop:new_event_loop --app-dir examples asgi_app:app
"""

from collections.abc import Awaitable, Callable
from typing import Any

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    import asyncio

    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    loop = type(asyncio.get_running_loop()).__name__
    text = f"hello from {loop}: {scope['method']} {scope['path']} ({len(body)} bytes)\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": text.encode()})
