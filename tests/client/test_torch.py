"""The PyTorch dataset: worker and rank split, tensors, epochs."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.client.live import CROP, TRAIN_SIZE, TRAIN_SMALL, LiveServer

torch = pytest.importorskip(
    "torch",
    reason="PyTorch is not in the locked environment; install the CPU wheel to run these",
)
from segserve_client.normalize import normalize  # noqa: E402
from segserve_client.torch import RemoteVOCSegmentation, shard_numbers  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

pytestmark = pytest.mark.torch
USABLE = TRAIN_SIZE - TRAIN_SMALL
BATCH = 2


@given(st.integers(0, 50), st.integers(1, 4), st.integers(1, 4))
def test_shards_cover_every_batch_once(num_batches: int, world_size: int, workers: int) -> None:
    taken = [
        n
        for rank, worker in itertools.product(range(world_size), range(workers))
        for n in shard_numbers(num_batches, rank, world_size, worker, workers)
    ]
    assert sorted(taken) == list(range(num_batches))


def _dataset(live: LiveServer, **kwargs: Any) -> RemoteVOCSegmentation:
    return RemoteVOCSegmentation(live.url, "train", *CROP, batch_size=BATCH, **kwargs)


def test_items_are_tensors_of_the_api_shapes(live: LiveServer) -> None:
    item = next(iter(_dataset(live, rank=0, world_size=USABLE // BATCH)))
    assert item["batch"] == 0
    assert item["image"].dtype == torch.float32
    assert tuple(item["image"].shape) == (BATCH, 3, *CROP)
    assert (item["label"].dtype, tuple(item["label"].shape)) == (torch.uint8, (BATCH, *CROP))
    assert (item["index"].dtype, item["rect"].dtype) == (torch.int64, torch.int32)
    raw = next(iter(_dataset(live, normalize=False, world_size=USABLE // BATCH, rank=0)))
    assert tuple(raw["image"].shape) == (BATCH, *CROP, 3)
    expected = normalize(raw["image"].numpy())
    np.testing.assert_allclose(item["image"].numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(("world_size", "workers"), [(1, 2), (2, 2), (3, 1)])
def test_dataloader_workers_and_ranks_take_every_batch_once(
    live: LiveServer, world_size: int, workers: int
) -> None:
    numbers: list[int] = []
    indices: list[int] = []
    for rank in range(world_size):
        dataset = _dataset(live, rank=rank, world_size=world_size, epoch=2)
        loader = DataLoader(dataset, batch_size=None, num_workers=workers)
        for item in loader:
            numbers.append(item["batch"])
            indices += item["index"].tolist()
    assert sorted(numbers) == list(range(USABLE // BATCH))
    assert sorted(indices) == list(range(TRAIN_SMALL, TRAIN_SIZE))


def test_set_epoch_changes_the_order(live: LiveServer) -> None:
    dataset = _dataset(live)
    first = [i for item in dataset for i in item["index"].tolist()]
    dataset.set_epoch(1)
    second = [i for item in dataset for i in item["index"].tolist()]
    assert sorted(first) == sorted(second)
    assert first != second


def test_recipe_parameters_reach_the_server(live: LiveServer) -> None:
    plain = next(iter(_dataset(live, rank=0, world_size=USABLE // BATCH, normalize=False)))
    recipe = _dataset(
        live,
        rank=0,
        world_size=USABLE // BATCH,
        normalize=False,
        photometric=True,
        cat_max_ratio=0.9,
    )
    assert (recipe.request.photometric, recipe.request.cat_max_ratio) == (True, 0.9)
    item = next(iter(recipe))
    assert tuple(item["image"].shape) == tuple(plain["image"].shape)
    assert not torch.equal(item["image"], plain["image"])  # the server applied them
