"""The epoch stream: frames sent as they are built, a few built ahead, stopped on disconnect.

Each frame is an 8-byte little-endian length and one batch in safetensors. A
producer task builds up to ``prefetch`` batches at once, each in a worker
thread (so one stream uses as many cores as ``prefetch``: building and encoding
release the GIL), and hands them over in order through an unbuffered channel:
with the one being sent, at most ``prefetch + 1`` batches are in memory.
When the client goes away the whole task group is cancelled: the batch being
built is finished (a thread cannot be interrupted) and no other is started.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.abc import ObjectSendStream
from segserve_client.protocol.wire import Encoded, frame_prefix
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.bodies import FRAMES
from app.metrics import Metrics

logger = logging.getLogger(__name__)


class FrameStreamResponse(Response):
    """Streams ``build(b)`` for each batch number ``b`` of ``batches``, as frames."""

    def __init__(
        self,
        build: Callable[[int], Encoded],
        batches: Sequence[int],
        *,
        prefetch: int,
        metrics: Metrics,
        headers: dict[str, str],
    ) -> None:
        self.status_code = 200
        self.media_type = FRAMES
        self.background = None
        self._build = build
        self._batches = batches
        self._prefetch = max(prefetch, 1)
        self._metrics = metrics
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the frames until the last one, or until the client disconnects."""
        channel_in, channel_out = anyio.create_memory_object_stream[Encoded](0)
        self._metrics.streams.inc()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._produce, channel_in)
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                await send(
                    {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
                )
                async with channel_out:
                    async for encoded in channel_out:
                        if not await _send_frame(send, encoded):
                            break
                    else:
                        await send({"type": "http.response.body", "body": b""})
                group.cancel_scope.cancel()
        finally:
            self._metrics.streams.dec()

    async def _produce(self, channel: ObjectSendStream[Encoded]) -> None:
        """Build ``prefetch`` batches at a time; send each, in order, when it is done."""
        async with channel, anyio.create_task_group() as builders:
            window: deque[_Pending] = deque()
            for batch in self._batches:
                window.append(_Pending())
                builders.start_soon(self._build_into, batch, window[-1])
                if len(window) >= self._prefetch:
                    await channel.send(await window.popleft().result())
            while window:
                await channel.send(await window.popleft().result())

    async def _build_into(self, batch: int, pending: _Pending) -> None:
        pending.encoded = await run_in_threadpool(self._build, batch)
        pending.done.set()


@dataclass
class _Pending:
    """A batch being built: set once its encoded body is there."""

    done: anyio.Event = field(default_factory=anyio.Event)
    encoded: Encoded | None = None

    async def result(self) -> Encoded:
        """The encoded batch, once built."""
        await self.done.wait()
        assert self.encoded is not None  # set before done
        return self.encoded


async def _send_frame(send: Send, encoded: Encoded) -> bool:
    """Send one frame; False when the client has gone (the ASGI server raised ``OSError``)."""
    try:
        for chunk in (frame_prefix(encoded.nbytes), *encoded.chunks()):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except OSError:
        logger.info("epoch stream: client disconnected")
        return False
    return True


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Wait for the client to disconnect, then cancel the stream's work."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
