"""Epoch streams (``GET /v1/splits/{split}/epochs/{epoch}``) that survive a dying replica.

Built on the request layer: getting the next batch of the stream is one
attempt of the :class:`~segserve_client.retry.RetryPolicy`, on the replica the
stream is open on while it stays healthy. When the stream breaks -- cut,
reset, an error status, or a clean end before the last batch asked for (a
replica draining at a frame boundary) -- it is asked for again from the first
batch not yet delivered (``start`` moved on), on the next healthy replica.
Determinism makes the resumed part identical. Frames are split by
:func:`segserve_client.protocol.wire.iter_frames_into`, each read in place into
a pooled buffer (one copy, from the socket); a length above
:data:`~segserve_client.protocol.wire.MAX_FRAME_BYTES` is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack

from segserve_client.batch import Batch
from segserve_client.buffers import Bytes
from segserve_client.errors import ProtocolError, TransportError
from segserve_client.loader import prefetched
from segserve_client.protocol import wire
from segserve_client.session import Session, query_string
from segserve_client.transport import FAILURES


class _Resumable:
    """One epoch stream, reopened at ``start`` whenever the open one fails."""

    def __init__(self, session: Session, path: str, query: Mapping[str, str], batches: range):
        self.session = session
        self.path = path
        self.query = dict(query)
        self.rest = batches  # the batch numbers not yet delivered
        self.replica: int | None = None
        self._frames: Iterator[Bytes] | None = None
        self._url = ""
        self._stack = ExitStack()

    def target(self) -> str:
        """The request target for the batches not yet delivered."""
        rest = {"start": str(self.rest.start), "stop": str(self.rest.stop)}
        return self.path + query_string({**self.query, **rest, "step": str(self.rest.step)})

    def next_frame(self, replica: int) -> Bytes:
        """The next batch's frame, read from ``replica`` (opening the stream there when needed)."""
        if self.replica != replica:
            self.close()
            response = self._stack.enter_context(self.session.response(replica, self.target()))
            frames = wire.iter_frames_into(response.raw.readinto, self.session.pool.acquire)
            self.replica, self._frames = replica, frames
            self._url = response.url
        try:
            frame = self._read_frame()
        except BaseException:
            self.close()
            raise
        self.rest = self.rest[1:]
        return frame

    def _read_frame(self) -> Bytes:
        assert self._frames is not None  # opened by next_batch
        try:
            frame = next(self._frames, None)
        except (ValueError, *FAILURES) as error:
            raise TransportError(f"{type(error).__name__}: {error}", url=self._url) from None
        if frame is None:
            raise TransportError(f"stream ended before batch {self.rest.start}", url=self._url)
        return frame

    def decode(self, frame: Bytes) -> Batch:
        """The batch in ``frame``, encoded tensors decoded into pooled buffers (thread-safe)."""
        try:
            return Batch.decode(frame, self.session.pool.decode_target)
        except ValueError as error:
            raise ProtocolError(f"{self._url}: {error}") from None

    def close(self) -> None:
        """Close the open stream, if any (its connection is not reused)."""
        self.replica, self._frames = None, None
        self._stack.close()


def epoch_stream(
    session: Session, path: str, query: Mapping[str, str], batches: range, prefetch: int = 2
) -> Iterator[Batch]:
    """The batches ``batches`` (numbers of the epoch) of the stream at ``path``, in order.

    Frames are read here, ahead of the consumer, and decoded in ``prefetch``
    threads while the next ones arrive (the codecs release the GIL), as the
    :class:`~segserve_client.BatchLoader` does with its requests.
    """
    stream = _Resumable(session, path, query, batches)
    try:
        yield from prefetched(stream.decode, _frames(session, stream), prefetch)
    finally:
        stream.close()


def _frames(session: Session, stream: _Resumable) -> Iterator[Bytes]:
    """Each remaining frame of ``stream``, the read retried and resumed by the retry loop."""
    while stream.rest:
        hint = stream.rest.start if stream.replica is None else stream.replica
        yield session.retry.call(
            session.replicas, stream.next_frame, hint=hint, url=stream.target()
        )
