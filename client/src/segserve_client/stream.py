"""Epoch streams (``GET /v1/splits/{split}/epochs/{epoch}``) that survive a dying replica.

Built on the request layer: getting the next batch of the stream is one
attempt of the :class:`~segserve_client.retry.RetryPolicy`, on the replica the
stream is open on while it stays healthy. When the stream breaks -- cut,
reset, an error status, or a clean end before the last batch asked for (a
replica draining at a frame boundary) -- it is asked for again from the first
batch not yet delivered (``start`` moved on), on the next healthy replica.
Determinism makes the resumed part identical. Frames are split by
:func:`segserve_client.protocol.wire.iter_frames_into`, each read in place into
leased memory (one copy, from the socket), the batch's own until released; a length above
:data:`~segserve_client.protocol.wire.MAX_FRAME_BYTES` is refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack

from segserve_client.batch import Batch
from segserve_client.buffers import BatchLease, Bytes
from segserve_client.errors import ProtocolError, TransportError
from segserve_client.loader import prefetched
from segserve_client.protocol import wire
from segserve_client.session import Session, query_string
from segserve_client.transport import FAILURES

Frame = tuple[Bytes, BatchLease]  # a frame's body and the lease of its memory


class _Resumable:
    """One epoch stream, reopened at ``start`` whenever the open one fails."""

    def __init__(self, session: Session, path: str, query: Mapping[str, str], batches: range):
        self.session = session
        self.path = path
        self.query = dict(query)
        self.rest = batches  # the batch numbers not yet delivered
        self.replica: int | None = None
        self._frames: Iterator[Bytes] | None = None
        self._lease: BatchLease | None = None  # of the frame being read
        self._url = ""
        self._stack = ExitStack()

    def target(self) -> str:
        """The request target for the batches not yet delivered."""
        rest = {"start": str(self.rest.start), "stop": str(self.rest.stop)}
        return self.path + query_string({**self.query, **rest, "step": str(self.rest.step)})

    def next_frame(self, replica: int) -> Frame:
        """The next frame and its lease, read from ``replica`` (opening the stream when needed)."""
        if self.replica != replica:
            self.close()
            response = self._stack.enter_context(self.session.response(replica, self.target()))
            frames = wire.iter_frames_into(response.raw.readinto, self._acquire)
            self.replica, self._frames = replica, frames
            self._url = response.url
        try:
            frame = self._read_frame()
        except BaseException:
            if self._lease is not None:
                self._lease.release()
            self.close()
            raise
        assert self._lease is not None  # the frame was read into it
        self.rest, lease, self._lease = self.rest[1:], self._lease, None
        return frame, lease

    def _acquire(self, nbytes: int) -> Bytes:
        """Leased bytes for the next frame (each frame is a batch with a lease of its own)."""
        self._lease = BatchLease(self.session.pool)
        return self._lease.take(nbytes)

    def _read_frame(self) -> Bytes:
        assert self._frames is not None  # opened by next_batch
        try:
            frame = next(self._frames, None)
        except (ValueError, *FAILURES) as error:
            raise TransportError(f"{type(error).__name__}: {error}", url=self._url) from None
        if frame is None:
            raise TransportError(f"stream ended before batch {self.rest.start}", url=self._url)
        return frame

    def decode(self, frame: Frame) -> Batch:
        """The batch in ``frame``, encoded tensors decoded into its lease (thread-safe)."""
        body, lease = frame
        try:
            return Batch.decode(body, lease.target, lease)
        except ValueError as error:
            lease.release()
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


def _frames(session: Session, stream: _Resumable) -> Iterator[Frame]:
    """Each remaining frame of ``stream``, the read retried and resumed by the retry loop."""
    while stream.rest:
        hint = stream.rest.start if stream.replica is None else stream.replica
        yield session.retry.call(
            session.replicas, stream.next_frame, hint=hint, url=stream.target()
        )
