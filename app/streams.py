"""The epoch stream: frames sent as they are built, a few built ahead, stopped on disconnect.

Each frame is an 8-byte little-endian length and one batch in safetensors. A
producer task builds up to ``prefetch`` batches at once, each in a worker
thread (so one stream uses as many cores as ``prefetch``: building and encoding
release the GIL), and hands them over in order through an unbuffered channel:
with the one being sent, at most ``prefetch + 1`` batches are in memory.
Each batch is built holding a work slot (:mod:`app.admission`) taken for that
batch alone, so a long stream takes its turn with batch requests.
When the client goes away the whole task group is cancelled: the batch being
built is finished (a thread cannot be interrupted) and no other is started.
When the server drains (SIGTERM), no further batch is started: the frames
already built are sent and the response ends there, after a whole frame but
without the final chunk, so that no client can take it for a complete epoch.
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

from app.admission import WorkSlots
from app.bodies import FRAMES
from app.metrics import Metrics
from app.problems import DrainingError

logger = logging.getLogger(__name__)


class FrameStreamResponse(Response):
    """Streams ``build(b)`` for each batch number ``b`` of ``batches``, as frames.

    The caller has acquired one slot of ``slots`` for it: the first batch is
    built in that one, every other batch queues for its own.
    """

    def __init__(
        self,
        build: Callable[[int], Encoded],
        batches: Sequence[int],
        *,
        slots: WorkSlots,
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
        self._slots = slots
        self._held = True  # the slot the caller acquired, until the first batch uses it
        self._cut = False  # set when draining stopped the stream before its end
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the frames until the last one, until the client disconnects or the server drains."""
        channel_in, channel_out = anyio.create_memory_object_stream[Encoded](0)
        self._metrics.streams.inc()
        try:
            async with self._slots.stream(), anyio.create_task_group() as group:
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
                        await self._finish(send)
                group.cancel_scope.cancel()
        finally:
            self._give_back_held()
            self._metrics.streams.dec()

    async def _finish(self, send: Send) -> None:
        """End the body, unless draining cut the stream short (then leave it incomplete)."""
        if self._cut:
            logger.info("epoch stream: ended after a whole frame, the server is shutting down")
            return
        await send({"type": "http.response.body", "body": b""})

    async def _produce(self, channel: ObjectSendStream[Encoded]) -> None:
        """Build ``prefetch`` batches at a time; send each, in order, when it is done."""
        async with channel, anyio.create_task_group() as builders:
            window: deque[_Pending] = deque()
            for batch in self._batches:
                try:
                    await self._take_slot()
                except DrainingError:
                    self._cut = True
                    break
                window.append(_Pending())
                builders.start_soon(self._build_into, batch, window[-1])
                if len(window) >= self._prefetch:
                    await channel.send(await window.popleft().result())
            while window:
                await channel.send(await window.popleft().result())

    async def _build_into(self, batch: int, pending: _Pending) -> None:
        """Build one batch in a worker thread, then give its slot back."""
        try:
            pending.encoded = await run_in_threadpool(self._build, batch)
        finally:
            self._slots.release()
        pending.done.set()

    async def _take_slot(self) -> None:
        """The caller's slot for the first batch, then a turn in the queue for each other."""
        if self._held:
            self._held = False
            return
        await self._slots.acquire(bounded=False)

    def _give_back_held(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()


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
