"""The PyTorch dataset: tensors, epochs, held items, and mid-epoch resume (Stateful)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.client.live import CROP, TRAIN_SIZE, TRAIN_SMALL, LiveServer, free_port

torch = pytest.importorskip(
    "torch",
    reason="PyTorch is not in the locked environment; install the CPU wheel to run these",
)
import segserve_client.torch as adapter  # noqa: E402
from segserve_client.normalize import normalize  # noqa: E402
from segserve_client.torch import RemoteVOCSegmentation  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

pytestmark = pytest.mark.torch
USABLE = TRAIN_SIZE - TRAIN_SMALL
BATCH = 2
Item = tuple[int, bytes]


def _dataset(live: LiveServer, **kwargs: Any) -> RemoteVOCSegmentation:
    return RemoteVOCSegmentation(live.url, "train", *CROP, batch_size=BATCH, **kwargs)


def _bytes(items: Iterable[dict[str, Any]]) -> list[Item]:
    """Each item's batch number and the bytes of all its tensors."""
    names = ("image", "label", "index", "rect")
    return [(i["batch"], b"".join(i[n].numpy().tobytes() for n in names)) for i in items]


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


@pytest.mark.parametrize("normalized", [True, False])
def test_held_items_never_change(live: LiveServer, normalized: bool) -> None:
    dataset = _dataset(live, normalize=normalized, prefetch=3)
    held = [(item, _bytes([item])) for item in dataset]
    dataset.set_epoch(1)
    again = list(dataset)  # a whole epoch more while the first is held
    assert len(again) == len(held) == USABLE // BATCH
    for item, snapshot in held:
        assert _bytes([item]) == snapshot


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
        mine = []
        for item in loader:
            mine.append(item["batch"])
            indices += item["index"].tolist()
        assert mine == list(range(rank, USABLE // BATCH, world_size))  # in order
        numbers += mine
    assert sorted(numbers) == list(range(USABLE // BATCH))
    assert sorted(indices) == list(range(TRAIN_SMALL, TRAIN_SIZE))


def test_set_epoch_changes_the_order(live: LiveServer) -> None:
    dataset = _dataset(live)
    first = [i for item in dataset for i in item["index"].tolist()]
    dataset.set_epoch(1)
    second = [i for item in dataset for i in item["index"].tolist()]
    assert sorted(first) == sorted(second)
    assert first != second


@pytest.mark.parametrize("consumed", [0, 1, 3])
def test_state_dict_resumes_in_process_with_the_same_bytes(live: LiveServer, consumed: int) -> None:
    whole = _bytes(_dataset(live, epoch=4, flip=True))
    dataset = _dataset(live, epoch=4, flip=True)
    loader = DataLoader(dataset, batch_size=None)
    first = _bytes(itertools.islice(loader, consumed))
    state = dataset.state_dict()
    assert (state["epoch"], state["next"]) == (4, consumed)
    resumed = _dataset(live, flip=True)  # a new process would build it from its config
    resumed.load_state_dict(state)
    assert resumed.epoch == 4
    assert first + _bytes(DataLoader(resumed, batch_size=None)) == whole


@pytest.mark.slow
@pytest.mark.parametrize("consumed", [1, 4])
def test_resume_with_two_workers_and_two_ranks(live: LiveServer, consumed: int) -> None:
    for rank in range(2):
        shard = {"rank": rank, "world_size": 2, "epoch": 1}
        whole = _bytes(DataLoader(_dataset(live, **shard), batch_size=None, num_workers=2))
        dataset = _dataset(live, **shard)
        first = _bytes(
            itertools.islice(DataLoader(dataset, batch_size=None, num_workers=2), consumed)
        )
        state = dataset.state_at(consumed)  # the main process counts what it took
        resumed = _dataset(live, rank=rank, world_size=2)
        resumed.load_state_dict(state)
        rest = _bytes(DataLoader(resumed, batch_size=None, num_workers=2))
        assert first + rest == whole
        assert len(whole) == USABLE // BATCH // 2


def test_a_workers_own_state_resumes_that_worker(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As torchdata's StatefulDataLoader does: state_dict and load_state_dict inside a worker."""
    monkeypatch.setattr(adapter, "get_worker_info", lambda: SimpleNamespace(id=1, num_workers=2))
    whole = _bytes(_dataset(live))  # worker 1 of 2: batches 1, 3, 5, ...
    assert [number for number, _ in whole] == list(range(1, USABLE // BATCH, 2))
    dataset = _dataset(live)
    first = _bytes(itertools.islice(iter(dataset), 2))
    state = dataset.state_dict()
    assert (state["next"], state["worker"], state["num_workers"]) == (5, 1, 2)
    resumed = _dataset(live)
    resumed.load_state_dict(state)
    assert first + _bytes(resumed) == whole
    monkeypatch.setattr(adapter, "get_worker_info", lambda: SimpleNamespace(id=0, num_workers=2))
    other = _dataset(live)
    other.load_state_dict(state)
    with pytest.raises(ValueError, match="worker 1 of 2"):
        next(iter(other))


def test_a_state_of_other_parameters_or_ranks_is_refused(live: LiveServer) -> None:
    state = _dataset(live, rank=0, world_size=2).state_at(2)
    with pytest.raises(ValueError, match="other batch parameters"):
        _dataset(live, rank=0, world_size=2, flip=True).load_state_dict(state)
    with pytest.raises(ValueError, match="rank 0 of 2"):
        _dataset(live, rank=1, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="not a segserve dataset state"):
        _dataset(live).load_state_dict({"epoch": 0})


def test_set_epoch_keeps_a_state_of_the_same_epoch_only(live: LiveServer) -> None:
    dataset = _dataset(live)
    dataset.load_state_dict(_dataset(live, epoch=3).state_at(4))
    dataset.set_epoch(3)
    assert dataset.state_dict()["next"] == 4
    dataset.set_epoch(4)
    assert (dataset.state_dict()["epoch"], dataset.state_dict()["next"]) == (4, 0)


@pytest.mark.slow
def test_rank_and_world_size_come_from_torch_distributed(live: LiveServer) -> None:
    """Two processes in a gloo group on 127.0.0.1, no explicit rank: each takes its shard."""
    code = textwrap.dedent(
        """
        import sys, torch.distributed as dist
        from segserve_client.torch import RemoteVOCSegmentation
        url, port, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                world_size=2)
        dataset = RemoteVOCSegmentation(url, "train", 32, 48, batch_size=2)
        print(dataset.state_dict()["rank"], [item["batch"] for item in dataset])
        dist.destroy_process_group()
        """
    )
    port = str(free_port())
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", code, live.url, port, str(rank)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0].strip() for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    for rank, output in enumerate(outputs):
        expected = list(range(rank, USABLE // BATCH, 2))
        assert output == f"{rank} {expected}"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:'set_vital' is deprecated:UserWarning")
def test_statefuldataloader_resumes_with_two_workers_and_two_ranks(live: LiveServer) -> None:
    """torchdata's own loader: it takes and restores each worker's dataset state."""
    stateful = pytest.importorskip("torchdata.stateful_dataloader", reason="needs torchdata")
    for rank in range(2):
        shard = {"rank": rank, "world_size": 2, "epoch": 1, "flip": True}
        whole = _bytes(stateful.StatefulDataLoader(_dataset(live, **shard), batch_size=None))
        loader = stateful.StatefulDataLoader(
            _dataset(live, **shard), batch_size=None, num_workers=2
        )
        first = _bytes(itertools.islice(iter(loader), 3))
        state = loader.state_dict()
        resumed = stateful.StatefulDataLoader(
            _dataset(live, **shard), batch_size=None, num_workers=2
        )
        resumed.load_state_dict(state)
        assert first + _bytes(resumed) == whole


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
