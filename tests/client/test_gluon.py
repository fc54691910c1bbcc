"""The Gluon adapter against the chapter's own VOCSegDataset on the same files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import numpy as np
import pytest
from segserve_client import BatchRequest, SegClient
from segserve_client.gluon import Transport, VOCBatches, load_data_voc

from tests.client.live import CROP, LiveServer

mx = pytest.importorskip("mxnet", reason="needs the mxnet extra")
pytestmark = pytest.mark.mxnet

BATCH = 4
VOID: Final = "background"  # the chapter's labels, as load_data_voc asks for them
# The server decodes JPEGs with PIL, the chapter with MXNet's OpenCV. Measured on
# this data: max difference 4.8e-7 (one float32 rounding step), i.e. identical
# decoded pixels; the bound leaves room for a decoder whose IDCT differs.
JPEG_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def chapter(d2l: ModuleType) -> ModuleType:
    """The chapter's module (under its ``npx.set_np()``)."""
    return d2l


@pytest.fixture(scope="module")
def chapter_sets(chapter: Any, voc_root: Path) -> dict[str, Any]:
    """The chapter's VOCSegDataset for train (is_train=True) and val."""
    return {
        "train": chapter.VOCSegDataset(True, CROP, str(voc_root)),
        "val": chapter.VOCSegDataset(False, CROP, str(voc_root)),
    }


@pytest.fixture
def batches(live: LiveServer) -> Iterator[dict[Transport, VOCBatches]]:
    """The adapter's train iterable with both transports."""
    with SegClient(live.url) as client:
        yield {
            transport: VOCBatches(
                client, "train", BatchRequest(*CROP, batch_size=BATCH, void=VOID, dtype=transport)
            )
            for transport in ("uint8", "float32")
        }


def _filtered_position(chapter: Any, voc_root: Path, is_train: bool) -> dict[int, int]:
    """Split index -> position in the chapter's filtered list."""
    features, _ = chapter.read_voc_images(str(voc_root), is_train)
    kept = [i for i, f in enumerate(features) if f.shape[0] >= CROP[0] and f.shape[1] >= CROP[1]]
    return {index: position for position, index in enumerate(kept)}


def test_load_data_voc_matches_the_chapter_shapes(
    live: LiveServer, chapter_sets: dict[str, Any]
) -> None:
    train_iter, test_iter = load_data_voc(BATCH, CROP, live.url)
    try:
        assert len(train_iter) == len(chapter_sets["train"]) // BATCH
        assert len(test_iter) == len(chapter_sets["val"]) // BATCH
        assert (train_iter.request.shuffle, test_iter.request.shuffle) == (True, False)
        assert train_iter.request.crop_size == CROP
        x, y = next(iter(train_iter))
        assert isinstance(x, mx.nd.NDArray)
        assert (x.shape, x.dtype, y.shape, y.dtype) == (
            (BATCH, 3, *CROP),
            np.float32,
            (BATCH, *CROP),
            np.float32,
        )
    finally:
        train_iter.close()


@pytest.mark.parametrize("transport", ["uint8", "float32"])
def test_pixels_match_the_chapter(
    batches: dict[Transport, VOCBatches],
    chapter: Any,
    chapter_sets: dict[str, Any],
    voc_root: Path,
    transport: Transport,
) -> None:
    loader = batches[transport].loader(0)
    position = _filtered_position(chapter, voc_root, True)
    dataset = chapter_sets["train"]
    worst, compared = 0.0, 0
    for raw, (x, y) in zip(loader, batches[transport], strict=True):
        for j, (index, (top, left, height, width)) in enumerate(
            zip(raw.index, raw.rect, strict=True)
        ):
            k = position[int(index)]
            feature = mx.image.fixed_crop(dataset.features[k], left, top, width, height)
            label = mx.image.fixed_crop(dataset.labels[k], left, top, width, height)
            expected = feature.transpose(2, 0, 1).asnumpy()
            worst = max(worst, float(np.abs(x[j].asnumpy() - expected).max()))
            indices = chapter.voc_label_indices(label, dataset.colormap2label).asnumpy()
            np.testing.assert_array_equal(y[j].asnumpy(), indices)
            compared += 1
    assert compared == len(dataset) // BATCH * BATCH
    assert worst <= JPEG_TOLERANCE


def test_each_pass_is_the_next_epoch(batches: dict[Transport, VOCBatches]) -> None:
    train = batches["uint8"]
    first = [y.asnumpy() for _, y in train]
    second = [y.asnumpy() for _, y in train]
    assert train.epoch == 2
    assert len(first) == len(second) == len(train)
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_test_iter_is_not_shuffled(live: LiveServer, chapter_sets: dict[str, Any]) -> None:
    with SegClient(live.url) as client:
        request = BatchRequest(*CROP, batch_size=2, shuffle=False, void=VOID)
        test_iter = VOCBatches(client, "val", request)
        loader = test_iter.loader(0)
        order = [int(i) for batch in loader for i in batch.index]
    assert order == sorted(order)
    assert len(order) == len(chapter_sets["val"]) // 2 * 2


def test_load_data_voc_takes_the_recipe(live: LiveServer) -> None:
    train_iter, test_iter = load_data_voc(
        BATCH,
        CROP,
        live.url,
        flip=True,
        scale=(0.5, 2.0),
        cat_max_ratio=0.75,
        photometric=True,
        crop_mode="center",
    )
    try:
        train, test = train_iter.request, test_iter.request
        assert (train.flip, train.scale, train.cat_max_ratio, train.photometric) == (
            True,
            (0.5, 2.0),
            0.75,
            True,
        )
        assert train.crop_mode == "random"
        assert (test.crop_mode, test.photometric, test.cat_max_ratio, test.flip) == (
            "center",
            False,
            1.0,
            False,
        )
        x, y = next(iter(train_iter))
        assert (x.shape, y.shape) == ((BATCH, 3, *CROP), (BATCH, *CROP))
    finally:
        train_iter.close()


def test_held_ndarrays_never_change_while_later_batches_reuse_memory(
    batches: dict[Transport, VOCBatches],
) -> None:
    """The arrays behind NDArrays go back to the pool only when MXNet has freed them."""
    train = batches["uint8"]
    held = []
    for x, y in train:
        held.append((x, y, x.asnumpy().copy(), y.asnumpy().copy()))
    for x, y, x_seen, y_seen in held:  # every batch of the epoch held: none was overwritten
        np.testing.assert_array_equal(x.asnumpy(), x_seen)
        np.testing.assert_array_equal(y.asnumpy(), y_seen)
    kept_x, kept_y, x_seen, y_seen = held[0]
    del held
    for _ in range(2):  # later epochs reuse the freed memory; the kept batch stays as it was
        for x, y in train:
            x.wait_to_read()
            y.wait_to_read()
    np.testing.assert_array_equal(kept_x.asnumpy(), x_seen)
    np.testing.assert_array_equal(kept_y.asnumpy(), y_seen)
    assert train._outputs.free > 0  # freed batches did come back


@pytest.mark.parametrize("transport", ["uint8", "float32"])
def test_epochs_stream_by_default_and_batch_by_batch_on_request(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch, transport: Transport
) -> None:
    with SegClient(live.url) as client:
        request = BatchRequest(*CROP, batch_size=BATCH, void=VOID, dtype=transport)
        targets: list[str] = []
        response = client.session.response

        def recorded(replica: int, target: str, *args: Any) -> Any:
            targets.append(target.split("?")[0])
            return response(replica, target, *args)

        monkeypatch.setattr(client.session, "response", recorded)
        streamed = [(x.asnumpy(), y.asnumpy()) for x, y in VOCBatches(client, "train", request)]
        assert [t for t in targets if "/epochs/" in t] == ["/v1/splits/train/epochs/0"]
        assert not [t for t in targets if "/batches/" in t]
        targets.clear()
        fetched = VOCBatches(client, "train", request, stream=False)
        by_batch = [(x.asnumpy(), y.asnumpy()) for x, y in fetched]
        assert len([t for t in targets if "/batches/" in t]) == len(by_batch) == len(fetched)
        assert not [t for t in targets if "/epochs/" in t]
    for (x, y), (x_fetched, y_fetched) in zip(streamed, by_batch, strict=True):
        np.testing.assert_array_equal(x, x_fetched)
        np.testing.assert_array_equal(y, y_fetched)


def test_connections_split_each_epoch_over_that_many_streams(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    train_iter, _ = load_data_voc(BATCH, CROP, live.url, connections=3)
    try:
        targets: list[str] = []
        response = train_iter.client.session.response

        def recorded(replica: int, target: str, *args: Any) -> Any:
            targets.append(target)
            return response(replica, target, *args)

        monkeypatch.setattr(train_iter.client.session, "response", recorded)
        assert len([y for _, y in train_iter]) == len(train_iter)
        streams = [t for t in targets if "/epochs/" in t]
        assert len(streams) == 3
        assert sorted(t.split("start=")[1].split("&")[0] for t in streams) == ["0", "1", "2"]
        assert all("step=3" in t for t in streams)
        with pytest.raises(ValueError, match="connections must be >= 1"):
            load_data_voc(BATCH, CROP, live.url, connections=0)
    finally:
        train_iter.close()
