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
from typing import TypeVar

from segserve_client.batch import Batch
from segserve_client.http import ParamValue, SegClient

T = TypeVar("T")
R = TypeVar("R")


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
    """The batches of one epoch of ``split`` for this trainer, in order.

    ``params`` are the API.md batch parameters (``shuffle``, ``drop_last``,
    ``small``, ``void``, ``flip``, ``scale``, ``dtype``, ``layout``).
    ``prefetch`` batches are requested ahead of the one being consumed.
    Iterating yields :class:`Batch` objects; :meth:`map` runs a conversion in
    the prefetch threads as well.
    """

    def __init__(
        self,
        client: SegClient,
        split: str,
        *,
        height: int,
        width: int,
        batch_size: int = 64,
        epoch: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        prefetch: int = 4,
        **params: ParamValue,
    ) -> None:
        check_rank(rank, world_size)
        self.client = client
        self.split = split
        self.epoch = epoch
        self.rank = rank
        self.world_size = world_size
        self.prefetch = prefetch
        self.params: dict[str, ParamValue] = {
            "height": height,
            "width": width,
            "batch_size": batch_size,
            "seed": seed,
            **params,
        }
        self._num_batches: int | None = None

    @property
    def num_batches(self) -> int:
        """Batches in the whole epoch (all ranks), asked of the server once."""
        if self._num_batches is None:
            keys = ("height", "width", "batch_size", "small", "drop_last")
            sizing = {k: self.params[k] for k in keys if k in self.params}
            self._num_batches = int(self.client.split(self.split, **sizing)["batches"])
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
            batch = self.client.batch(
                self.split, number, hint=hint, epoch=self.epoch, **self.params
            )
            return transform(batch)

        return prefetched(fetch, enumerate(self.numbers()), self.prefetch)


def _identity(batch: Batch) -> Batch:
    return batch
