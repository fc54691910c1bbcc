"""Which worker process answered: the ``Segserve-Worker`` and ``Segserve-Workers`` headers.

Every response names the worker process that sent it (a random id drawn when
the process creates its app, so a replaced worker has a new one) and how many
worker processes the server runs. A connection stays with the process that
accepted it, so a client can tell where its connections go. The epoch stream
client uses it to open its ``connections`` streams on as many different
processes: the kernel hands connections to whichever worker accepts first, and
a client reusing its keep-alive connections could otherwise find every stream
of an epoch on one process (one event loop sending all of them) while another
stood idle (see docs/API.md, "Epoch streams").
"""

from __future__ import annotations

import secrets
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WORKER_HEADER: Final = "segserve-worker"
WORKERS_HEADER: Final = "segserve-workers"


class WorkerHeaderMiddleware:
    """Pure ASGI middleware adding the worker headers to every HTTP response."""

    def __init__(self, app: ASGIApp, workers: int) -> None:
        self.app = app
        self.worker_id = secrets.token_hex(4)
        self._headers = [
            (WORKER_HEADER.encode(), self.worker_id.encode()),
            (WORKERS_HEADER.encode(), str(workers).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; the response's start message gains the two headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def naming_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *self._headers]}
            await send(message)

        await self.app(scope, receive, naming_send)
