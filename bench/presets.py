"""What a benchmark run measures: dataset sizes, repeats, crop and batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Preset:
    """The sizes and repeat counts of one benchmark run.

    ``rounds``: each throughput configuration runs once per round, rounds
    interleave the configurations so drifting machine load hits them alike;
    ``min_seconds``: once is whole epochs until that many seconds have passed
    (throughput, nginx and link phases).
    ``nginx_modes``: the client modes measured through nginx (:mod:`bench.nginx`).
    ``scaleout_*``: replica counts and client modes of :mod:`bench.scaleout`.
    ``growth_*``: the base dataset of the growth check (``growth_factor`` times
    it is the large one) and how many batches each size is timed on.
    ``link_*``: the link phase (:mod:`bench.link`): its natural-photograph data
    set, the emulated link rates (bits/s), rounds (after an uncounted warm-up
    epoch of each configuration, when ``link_warm_up``), batches per epoch (0: the
    whole epoch, as a trainer runs it: a shorter one weighs each pipeline's
    first batch more than training does, the more so the faster the
    pipeline), segserve's delivery modes (and the links on which the epoch
    stream is measured as well), WebDataset's DataLoader workers and whether
    the chapter's pipeline runs alongside.
    ``trainer_*``: the many-trainers phase (:mod:`bench.trainers`): how many
    trainer processes, on how many replicas, each for how long.
    """

    name: str
    train: int
    val: int
    rounds: int
    warm_starts: int
    cold_builds: int
    growth_train: int
    growth_val: int
    growth_factor: int
    growth_batches: int
    batch_size: int = 64
    height: int = 320
    width: int = 480
    seed: int = 0
    min_seconds: float = 2.0
    chapter_workers: tuple[int, ...] = (0, 2)
    server_workers: tuple[int, ...] = (1, 2)
    nginx_modes: tuple[str, ...] = ("uint8", "gluon-uint8")
    link_train: int = 1464
    link_val: int = 1449
    link_rates: tuple[int, ...] = (10**9, 10**10)
    link_rounds: int = 3
    link_warm_up: bool = True
    link_batches: int = 0
    link_modes: tuple[str, ...] = ("gluon-uint8", "uint8")
    link_stream_links: tuple[str, ...] = ("loopback",)
    link_wds_workers: tuple[int, ...] = (0, 2)
    link_chapter: bool = True
    scaleout_replicas: tuple[int, ...] = (1, 2, 4)
    scaleout_modes: tuple[str, ...] = ("uint8",)
    trainer_counts: tuple[int, ...] = (1, 4, 16)
    trainer_replicas: tuple[int, ...] = (1, 2)
    trainer_seconds: float = 20.0
    trainer_batch_size: int = 16

    @property
    def fields(self) -> dict[str, int]:
        """Batch size and crop as the fields of a probe command."""
        return {"batch_size": self.batch_size, "height": self.height, "width": self.width}


PRESETS: Final[dict[str, Preset]] = {
    # VOC2012's segmentation splits are 1,464 train and 1,449 val images.
    "full": Preset(
        name="full",
        train=1464,
        val=1449,
        rounds=5,
        warm_starts=5,
        cold_builds=2,
        growth_train=400,
        growth_val=100,
        growth_factor=8,
        growth_batches=40,
    ),
    # A smoke run of about a minute: checks that every phase runs, not how fast.
    "small": Preset(
        name="small",
        train=224,
        val=32,
        rounds=2,
        min_seconds=0.0,
        warm_starts=2,
        cold_builds=1,
        growth_train=88,
        growth_val=8,
        growth_factor=2,
        growth_batches=4,
        link_train=128,
        link_val=8,
        link_rates=(10**9,),
        link_rounds=1,
        link_warm_up=False,
        link_batches=2,
        link_modes=("gluon-uint8",),
        link_stream_links=(),
        link_wds_workers=(2,),
        link_chapter=False,
        trainer_counts=(1, 4),
        trainer_replicas=(1,),
        trainer_seconds=3.0,
    ),
}
