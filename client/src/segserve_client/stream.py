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

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from typing import Generic, TypeVar

from segserve_client.batch import Batch
from segserve_client.buffers import BatchLease, Bytes
from segserve_client.errors import ClientClosedError, ProtocolError, TransportError
from segserve_client.loader import prefetched
from segserve_client.protocol import wire
from segserve_client.session import Session, query_string
from segserve_client.transport import FAILURES, WORKER_HEADER

Frame = tuple[Bytes, BatchLease]  # a frame's body and the lease of its memory
T = TypeVar("T")


class _Resumable:
    """One epoch stream, reopened at ``start`` whenever the open one fails."""

    def __init__(
        self,
        session: Session,
        path: str,
        query: Mapping[str, str],
        batches: range,
        siblings: list[_Resumable] | None = None,
    ):
        self.session = session
        self.path = path
        self.query = dict(query)
        self.rest = batches  # the batch numbers not yet delivered
        self.siblings = siblings if siblings is not None else []  # the epoch's streams
        self.replica: int | None = None
        self.worker: str | None = None  # the server worker process sending it
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
            avoid = self._siblings_workers(replica)
            response = self._stack.enter_context(
                self.session.response(replica, self.target(), avoid)
            )
            frames = wire.iter_frames_into(response.raw.readinto, self._acquire)
            self.replica, self._frames = replica, frames
            self.worker = response.header(WORKER_HEADER)
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

    def _siblings_workers(self, replica: int) -> frozenset[str]:
        """The worker processes of ``replica`` that send the epoch's other open streams."""
        return frozenset(
            part.worker
            for part in self.siblings
            if part is not self and part.replica == replica and part.worker is not None
        )

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
        """Close the open stream, if any (its connection is reused only if it was read to
        the end)."""
        self.replica, self._frames, self.worker = None, None, None
        self._stack.close()


def check_connections(connections: int | None) -> None:
    """ValueError unless ``connections`` is a number of streams (>= 1), or None: one per
    server worker process of the replicas."""
    if connections is not None and connections < 1:
        raise ValueError(f"connections must be >= 1 or None, got {connections}")


def epoch_stream(
    session: Session,
    path: str,
    query: Mapping[str, str],
    batches: range,
    transform: Callable[[Batch], T],
    prefetch: int = 2,
    connections: int = 1,
) -> Iterator[T]:
    """``transform(batch)`` of the batches ``batches`` (numbers of the epoch) of the
    stream at ``path``, in order.

    ``connections`` streams (>= 1, as :func:`check_connections` has checked)
    are opened, stream ``i`` carrying every ``connections``-th batch from the
    ``i``-th on, so that a server with several worker processes (or several
    replicas) builds the epoch in more than one of them: on a replica, each
    stream goes to a worker process that sends none of the others, as long as
    the replica has one (the ``Segserve-Worker`` header; see
    :mod:`segserve_client.transport`). Each
    stream is read by a thread of its own, ahead of the consumer (at most
    ``prefetch + 1`` frames in flight), and frames are
    decoded in ``prefetch`` threads while the next ones arrive (the codecs
    release the GIL), as the :class:`~segserve_client.BatchLoader` does with
    its requests. ``transform`` runs in the decoding thread, right after the
    decoding (a framework adapter's normalisation): the trainer's own work
    thus overlaps the transfer. A batch whose ``transform`` raises is released.
    """
    count = max(1, min(connections, len(batches)))
    parts: list[_Resumable] = []
    parts += [_Resumable(session, path, query, batches[i::count], parts) for i in range(count)]
    ahead = _ReadAhead(session, parts, transform)
    try:
        for read in prefetched(ahead.decode, ahead.reads(len(batches)), prefetch):
            yield ahead.deliver(read)
    finally:
        ahead.close()


class _ReadAhead(Generic[T]):
    """Reads of the next frames of interleaved streams, each stream in a thread of its own."""

    def __init__(
        self, session: Session, parts: list[_Resumable], transform: Callable[[Batch], T]
    ) -> None:
        self.session = session
        self.parts = parts
        self.transform = transform
        self.readers = [
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="segserve-stream") for _ in parts
        ]
        self._submitted: deque[_Read[T]] = deque()  # not yet delivered, in batch order

    def reads(self, total: int) -> Iterator[_Read[T]]:
        """The read of each frame, in batch order, submitted as the consumer's window asks."""
        for k in range(total):
            part = self.parts[k % len(self.parts)]
            # each stream is opened once the one before it is sending, so that it
            # knows which server worker processes to avoid (the ones already sending)
            after = self._submitted[-1].future if 0 < k < len(self.parts) else None
            read: _Read[T] = _Read(
                part, self.readers[k % len(self.parts)].submit(self._next, part, after)
            )
            self._submitted.append(read)
            yield read

    def _next(self, stream: _Resumable, after: Future[Frame] | None = None) -> Frame:
        """The next frame of ``stream``, the read retried and resumed by the retry loop
        (once ``after`` is done, when given)."""
        if after is not None:
            wait([after])
        hint = stream.rest.start if stream.replica is None else stream.replica
        return self.session.retry.call(
            self.session.replicas, stream.next_frame, hint=hint, url=stream.target()
        )

    def deliver(self, read: _Read[T]) -> T:
        """``read``'s result, the consumer's from now on (no reference to it is kept here)."""
        assert self._submitted[0] is read  # delivered in batch order
        self._submitted.popleft()
        result, read.result = read.result, None
        assert read.done  # set by decode
        assert result is not None
        read.delivered = True
        return result

    def decode(self, read: _Read[T]) -> _Read[T]:
        """``read``, its frame decoded into its batch and transformed once it is in (in a
        decoding thread)."""
        batch = read.part.decode(read.take())
        try:
            read.result = self.transform(batch)
        except BaseException:
            batch.release()
            raise
        read.done = True
        return read

    def close(self) -> None:
        """Stop reading: reads not started are cancelled, the running ones finish their
        frame; memory of frames and batches not delivered goes back to the pool; the
        streams close. Decoding has stopped by then."""
        for read in self._submitted:
            read.future.cancel()
        for reader in self.readers:
            reader.shutdown(wait=True)
        for read in self._submitted:
            read.discard()
        for part in self.parts:
            part.close()


class _Read(Generic[T]):
    """One frame being read: taken by the decoding thread, or discarded when the stream closes."""

    def __init__(self, part: _Resumable, future: Future[Frame]) -> None:
        self.part = part
        self.future = future
        self.result: T | None = None  # the transformed batch, once decoded
        self.done = False  # decoded and transformed
        self.delivered = False  # handed to the consumer, whose it is from then on
        self._taken = False
        self._lock = threading.Lock()

    def take(self) -> Frame:
        """The frame, now owned by the caller (raises what the read raised)."""
        frame = self.future.result()
        with self._lock:
            if self._taken:  # discarded by close: its memory is back in the pool
                raise ClientClosedError("the epoch stream was closed")
            self._taken = True
        return frame

    def discard(self) -> None:
        """Release the memory of the frame (or of its batch) unless the consumer has it."""
        if self.delivered or self.future.cancelled() or self.future.exception() is not None:
            return
        if self.done:  # a batch goes back; a transform's result is left to its owner
            if isinstance(self.result, Batch):
                self.result.release()
            return
        with self._lock:
            if self._taken:  # the decoding failed and released it
                return
            self._taken = True
        self.future.result()[1].release()
