"""Shards and resume positions, without torch: every batch once, in order, from any state."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from segserve_client.shards import Progress, rank_batches


def worker_positions(progress: Progress, count: int, worker: int, num_workers: int) -> range:
    """The positions a worker takes, as the PyTorch dataset computes them."""
    return range(progress.start(worker, num_workers), count, num_workers)


def dataloader_order(progress: Progress, count: int, num_workers: int) -> list[int]:
    """What a DataLoader hands out: one item from each worker in turn until all are done."""
    queues = [list(worker_positions(progress, count, w, num_workers)) for w in range(num_workers)]
    return [p for round_ in itertools.zip_longest(*queues) for p in round_ if p is not None]


@given(st.integers(0, 60), st.integers(1, 4), st.integers(1, 4))
def test_ranks_and_workers_take_every_batch_once(
    num_batches: int, world_size: int, num_workers: int
) -> None:
    taken = []
    for rank in range(world_size):
        mine = rank_batches(num_batches, rank, world_size)
        for worker in range(num_workers):
            positions = worker_positions(Progress(0), len(mine), worker, num_workers)
            taken += [mine[p] for p in positions]
    assert sorted(taken) == list(range(num_batches))


@given(st.integers(0, 40), st.integers(0, 45), st.integers(1, 5))
def test_a_global_state_resumes_in_order_with_any_number_of_workers(
    count: int, consumed: int, num_workers: int
) -> None:
    progress = Progress(epoch=3, next=consumed)
    assert dataloader_order(progress, count, num_workers) == list(range(consumed, count))


def test_a_worker_state_resumes_that_worker_only() -> None:
    progress = Progress(epoch=0, next=7, worker=1, num_workers=2)
    assert progress.start(1, 2) == 7
    with pytest.raises(ValueError, match="worker 1 of 2"):
        progress.start(0, 2)
    with pytest.raises(ValueError, match="same number of workers"):
        progress.start(1, 3)


def test_progress_round_trips_and_checks() -> None:
    progress = Progress(epoch=2, next=5, worker=1, num_workers=3)
    assert Progress.from_dict({**progress.to_dict(), "other": 1}) == progress
    with pytest.raises(ValueError, match="no 'next'"):
        Progress.from_dict({"epoch": 1, "worker": 0, "num_workers": 1})
    with pytest.raises(ValueError, match="'next'"):
        Progress(epoch=0, next=-1)
    with pytest.raises(ValueError, match="below num_workers"):
        Progress(epoch=0, worker=2, num_workers=2)
    with pytest.raises(ValueError, match="rank"):
        rank_batches(10, 2, 2)
