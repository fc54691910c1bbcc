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


def check_rank(rank: int, world_size: int) -> None:
    """``ValueError`` unless ``rank`` is one of ``world_size`` ranks."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")


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
    ) -> None:
        check_rank(rank, world_size)
        self.source = source
        self.split = split
        self.request = request
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self._num_batches: int | None = None

    @property
    def num_batches(self) -> int:
        """Batches in the whole epoch (all ranks), asked of the server once."""
        if self._num_batches is None:
            self._num_batches = self.source.num_batches(self.split, self.request)
        return self._num_batches

    def numbers(self) -> range:
        """The batch numbers this rank takes."""
        return range(self.rank, self.num_batches, self.world_size)

    def __len__(self) -> int:
        return len(self.numbers())

    def __iter__(self) -> Iterator[Batch]:
        return self.map(_identity)

    def map(self, transform: Callable[[Batch], T]) -> Iterator[T]:
        """``transform(batch)`` of each batch in order, run in the prefetch threads."""

        def fetch(position_number: tuple[int, int]) -> T:
            position, number = position_number
            hint = position + self.rank
            return transform(self.source.batch(self.split, number, self.request, hint=hint))

        return prefetched(fetch, enumerate(self.numbers()), self.prefetch)


def _identity(batch: Batch) -> Batch:
    return batch
