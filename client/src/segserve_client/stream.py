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

    def next_batch(self, replica: int) -> Batch:
        """The next batch, read from ``replica`` (opening the stream there when needed)."""
        if self.replica != replica:
            self.close()
            response = self._stack.enter_context(self.session.response(replica, self.target()))
            frames = wire.iter_frames_into(response.raw.readinto, self.session.pool.acquire)
            self.replica, self._frames = replica, frames
            self._url = response.url
        try:
            return self._decode(self._read_frame())
        except BaseException:
            self.close()
            raise

    def _read_frame(self) -> Bytes:
        assert self._frames is not None  # opened by next_batch
        try:
            frame = next(self._frames, None)
        except (ValueError, *FAILURES) as error:
            raise TransportError(f"{type(error).__name__}: {error}", url=self._url) from None
        if frame is None:
            raise TransportError(f"stream ended before batch {self.rest.start}", url=self._url)
        return frame

    def _decode(self, frame: Bytes) -> Batch:
        try:
            batch = Batch.decode(frame, self.session.pool.decode_target)
        except ValueError as error:
            raise ProtocolError(f"{self._url}: {error}") from None
        self.rest = self.rest[1:]
        return batch

    def close(self) -> None:
        """Close the open stream, if any (its connection is not reused)."""
        self.replica, self._frames = None, None
        self._stack.close()


def epoch_stream(
    session: Session, path: str, query: Mapping[str, str], batches: range
) -> Iterator[Batch]:
    """The batches ``batches`` (numbers of the epoch) of the stream at ``path``, in order."""
    stream = _Resumable(session, path, query, batches)
    try:
        while stream.rest:
            hint = stream.rest.start if stream.replica is None else stream.replica
            yield session.retry.call(
                session.replicas, stream.next_batch, hint=hint, url=stream.target()
            )
    finally:
        stream.close()
