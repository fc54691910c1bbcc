"""``BatchLoader``: one epoch's batches, in order, fetched ahead by background threads.

Batch numbers are spread over the replicas (batch ``j`` of this trainer asks
replica ``j mod R`` first); a replica that fails is left out for a while and
the batch is asked of the next one. Determinism makes the retried batch
byte-identical, so nothing is lost or duplicated.

Sharding follows API.md: a trainer of ``rank`` r among ``world_size`` k takes
batches r, r+k, r+2k, ...
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

from segserve_client.batch import Batch
from segserve_client.request import BatchRequest
from segserve_client.shards import rank_batches

T = TypeVar("T")
R = TypeVar("R")


class BatchSource(Protocol):
    """What a loader fetches from (a :class:`~segserve_client.SegClient`)."""

    def batch(
        self, split: str, number: int, request: BatchRequest | None = None, *, hint: int | None
    ) -> Batch:
        """Batch ``number`` of ``request``'s epoch, asking replica ``hint`` first."""

    def num_batches(self, split: str, request: BatchRequest | None = None) -> int:
        """How many batches an epoch of ``request`` has."""


def prefetched(fetch: Callable[[T], R], items: Iterable[T], depth: int) -> Iterator[R]:
    """``fetch(item)`` for each item, in order, with ``depth`` calls running ahead in threads."""
    if depth <= 0:
        yield from map(fetch, items)
        return
    pending: deque[Future[R]] = deque()
    remaining = iter(items)
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="segserve-prefetch") as pool:
        try:
            for item in remaining:
                pending.append(pool.submit(fetch, item))
                if len(pending) > depth:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


class BatchLoader:
    """The batches of one epoch (``request.epoch``) of ``split`` for this trainer, in order.

    ``source`` is a :class:`~segserve_client.SegClient`; ``request`` every
    batch parameter. ``prefetch`` batches are requested ahead of the one being
    consumed. Iterating yields :class:`Batch` objects; :meth:`map` runs a
    conversion in the prefetch threads as well.

    ``numbers``, when given, are the batch numbers to fetch instead of this
    rank's (a resumed or finer-grained shard).

    The batches are the caller's: held ones never change. With
    ``recycle=True`` the loader releases each batch when the next one is
    asked for (and the last when the iteration ends), so receive buffers are
    reused: a batch's arrays are then valid only until the next ``next()``.
    """

    def __init__(
        self,
        source: BatchSource,
        split: str,
        request: BatchRequest,
        *,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 4,
        recycle: bool = False,
        numbers: range | None = None,
    ) -> None:
        rank_batches(0, rank, world_size)  # checks the rank now
        self.source = source
        self.split = split
        self.request = request
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self.recycle = recycle
        self._num_batches: int | None = None
        self._numbers = numbers

    @property
    def num_batches(self) -> int:
        """Batches in the whole epoch (all ranks), asked of the server once."""
        if self._num_batches is None:
            self._num_batches = self.source.num_batches(self.split, self.request)
        return self._num_batches

    def numbers(self) -> range:
        """The batch numbers this loader fetches, in order."""
        if self._numbers is not None:
            return self._numbers
        return rank_batches(self.num_batches, self.rank, self.world_size)

    def __len__(self) -> int:
        return len(self.numbers())

    def __iter__(self) -> Iterator[Batch]:
        batches = self.map(_identity)
        return released_in_turn(batches) if self.recycle else batches

    def map(self, transform: Callable[[Batch], T]) -> Iterator[T]:
        """``transform(batch)`` of each batch in order, run in the prefetch threads."""

        numbers = self.numbers()

        def fetch(position_number: tuple[int, int]) -> T:
            position, number = position_number  # consecutive batches ask consecutive replicas
            hint = position + numbers.start
            return transform(self.source.batch(self.split, number, self.request, hint=hint))

        return prefetched(fetch, enumerate(numbers), self.prefetch)


def released_in_turn(batches: Iterator[Batch]) -> Iterator[Batch]:
    """``batches``, each released when the next is asked for (the last one at the end)."""
    previous: Batch | None = None
    try:
        for batch in batches:
            if previous is not None:
                previous.release()
            previous = batch
            yield batch
    finally:
        if previous is not None:
            previous.release()


def _identity(batch: Batch) -> Batch:
    return batch
