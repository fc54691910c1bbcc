"""Which batches a trainer process takes, and where a resumed iteration starts.

Rank r of k takes batches r, r+k, r+2k, ... (API.md); call the i-th of them
its *position* i. DataLoader worker w of m takes every m-th position from
``start + w``, so a DataLoader, which takes one item from each worker in
turn, hands the trainer positions start, start+1, ... in order, whatever the
number of workers.

:class:`Progress` says where an iteration is: the epoch and the position of
the next batch to deliver. Taken in one process (``num_workers=1``) it is
*global*: any number of workers can resume from it. Taken inside worker w of
m (as torchdata's ``StatefulDataLoader`` does) it is that worker's own and
resumes that worker only. Framework-free, so it is tested without torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


def rank_batches(num_batches: int, rank: int, world_size: int) -> range:
    """The batch numbers rank ``rank`` of ``world_size`` takes, in order (its positions)."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
    return range(rank, num_batches, world_size)


@dataclass(frozen=True)
class Progress:
    """Epoch ``epoch``, next position ``next``, as seen by worker ``worker`` of ``num_workers``."""

    epoch: int
    next: int = 0
    worker: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        for name in ("epoch", "next", "worker", "num_workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"state {name!r} must be an integer >= 0, got {value!r}")
        if not self.worker < self.num_workers:
            raise ValueError(f"state worker {self.worker} is not below num_workers")

    def start(self, worker: int, num_workers: int) -> int:
        """The first position worker ``worker`` of ``num_workers`` takes to resume."""
        if self.num_workers == 1:
            return self.next + worker
        if (self.worker, self.num_workers) == (worker, num_workers):
            return self.next
        raise ValueError(
            f"a state taken in worker {self.worker} of {self.num_workers} cannot resume "
            f"worker {worker} of {num_workers}; take the state in the main process "
            "(state_at) or resume with the same number of workers"
        )

    def to_dict(self) -> dict[str, int]:
        """The progress as plain integers (for a checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> Progress:
        """Read :meth:`to_dict`'s output back (``ValueError`` when it is not one)."""
        try:
            return cls(**{k: state[k] for k in ("epoch", "next", "worker", "num_workers")})
        except KeyError as missing:
            raise ValueError(f"not a segserve dataset state: no {missing}") from None
