"""The epoch stream: frames sent as they are built, a few built ahead, stopped on disconnect.

Each frame is an 8-byte little-endian length and one batch in safetensors.
When the length of every frame is known before it is built (raw batches: their
shapes and metadata follow from the request), the response carries a
``Content-Length`` and its body goes out as the buffers themselves; otherwise
(encoded batches) it is chunked, and the ASGI server copies each buffer into
its chunk. A
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
short of its ``Content-Length`` or without the final chunk, so that no client
can take it for a complete epoch. Buffers go to the ASGI server in pieces of
at most :data:`~app.bodies.SEND_PIECE` bytes (see :func:`app.bodies.pieces`).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio
from anyio.abc import ObjectSendStream
from segserve_client.protocol.wire import FRAME_PREFIX_BYTES, Encoded, frame_prefix
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.admission import WorkSlots
from app.bodies import FRAMES, pieces
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
        frame_sizes: Sequence[int] | None = None,
    ) -> None:
        """``frame_sizes``: each batch's body length, when known before it is built."""
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
        self._sizes = None if frame_sizes is None else list(frame_sizes)
        if self._sizes is not None:
            if len(self._sizes) != len(batches):
                raise ValueError(f"{len(self._sizes)} frame sizes for {len(batches)} batches")
            total = sum(FRAME_PREFIX_BYTES + size for size in self._sizes)
            headers = {**headers, "Content-Length": str(total)}
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
                    sent = 0
                    async for encoded in channel_out:
                        if not self._as_announced(sent, encoded):
                            break
                        if not await _send_frame(send, encoded):
                            break
                        sent += 1
                    else:
                        await self._finish(send)
                group.cancel_scope.cancel()
        finally:
            self._give_back_held()
            self._metrics.streams.dec()

    def _as_announced(self, number: int, encoded: Encoded) -> bool:
        """Whether frame ``number`` has the length the ``Content-Length`` counted on; if not,
        the stream ends there, incomplete (the client resumes), and the fault is logged."""
        if self._sizes is None or encoded.nbytes == self._sizes[number]:
            return True
        logger.error(
            "epoch stream: batch %d is %d bytes, %d were announced; the stream ends here",
            self._batches[number],
            encoded.nbytes,
            self._sizes[number],
        )
        self._cut = True
        return False

    async def _finish(self, send: Send) -> None:
        """End the body, unless draining cut the stream short (then leave it incomplete)."""
        if self._cut:
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
                    logger.info("epoch stream: ends after a whole frame, the server is draining")
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
        for chunk in pieces((frame_prefix(encoded.nbytes), *encoded.chunks())):
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
