"""Batches and crops: assembly, layouts, normalisation, void, alignment, parameters."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.batch import Batch, encode_batch, make_batch, make_crop, raw_batch_nbytes
from service.errors import InvalidParameterError, NotFoundError, NoUsableSampleError
from service.params import (
    BatchSpec,
    CropSpec,
    Dtype,
    Layout,
    Void,
    validate_batch,
    validate_crop,
)
from service.sampling import usable_indices
from service.source import U8Array
from service.voc import IGNORE_INDEX, RGB_MEAN, RGB_STD
from tests.service.memsource import PAD, MemorySource, coded_source, decode_classes

FAST = settings(max_examples=40, deadline=None)


def expected_classes(batch: Batch, void: Void) -> U8Array:
    """Classes read back from the batch's uint8 NHWC images."""
    classes = decode_classes(batch.image)
    fill = 0 if void == "background" else IGNORE_INDEX
    classes[classes == PAD] = fill
    if void == "background":
        classes[classes == IGNORE_INDEX] = 0
    return classes


def near_boundary(label: U8Array, radius: int) -> npt.NDArray[np.bool_]:
    """Pixels within ``radius`` of a class change or of the crop's edge."""
    h, w = label.shape
    edge = np.zeros((h, w), bool)
    edge[:, 1:] |= label[:, 1:] != label[:, :-1]
    edge[:, :-1] |= label[:, 1:] != label[:, :-1]
    edge[1:] |= label[1:] != label[:-1]
    edge[:-1] |= label[1:] != label[:-1]
    edge[[0, -1]], edge[:, [0, -1]] = True, True
    grown = edge.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = np.roll(np.roll(edge, dy, axis=0), dx, axis=1)
            grown |= shifted
    return grown


SIZE = st.tuples(st.integers(4, 40), st.integers(4, 40))


@FAST
@given(
    sizes=st.lists(SIZE, min_size=1, max_size=6),
    crop=SIZE,
    flip=st.booleans(),
    void=st.sampled_from(["ignore", "background"]),
    seed=st.integers(0, 2**63 - 1),
    epoch=st.integers(0, 5),
)
def test_labels_align_with_images(
    sizes: list[tuple[int, int]],
    crop: tuple[int, int],
    flip: bool,
    void: Void,
    seed: int,
    epoch: int,
) -> None:
    source = coded_source(sizes, seed=epoch)
    spec = BatchSpec(
        CropSpec(*crop, small="pad", void=void, flip=flip), 3, seed, epoch, drop_last=False
    )
    for b in range((len(sizes) + 2) // 3):
        batch = make_batch(source, spec, b)
        np.testing.assert_array_equal(batch.label, expected_classes(batch, void))


@FAST
@given(
    sizes=st.lists(st.tuples(st.integers(16, 40), st.integers(16, 40)), min_size=1, max_size=4),
    crop=SIZE,
    lo=st.floats(0.5, 1.0),
    hi=st.floats(1.0, 2.0),
    seed=st.integers(0, 2**63 - 1),
)
def test_labels_align_with_rescaled_images(
    sizes: list[tuple[int, int]], crop: tuple[int, int], lo: float, hi: float, seed: int
) -> None:
    source = coded_source(sizes, seed=1, block=8)
    spec = BatchSpec(
        CropSpec(*crop, small="pad", flip=True, scale=(lo, hi)), 4, seed, drop_last=False
    )
    batch = make_batch(source, spec, 0)
    # Bilinear blends neighbouring classes' colours within ~1 pixel of a class change.
    for label, classes in zip(batch.label, expected_classes(batch, "ignore"), strict=True):
        wrong = label != classes
        assert not (wrong & ~near_boundary(label, 2)).any()


@FAST
@given(
    sizes=st.lists(SIZE, min_size=1, max_size=9),
    crop=SIZE,
    batch_size=st.integers(1, 4),
    drop_last=st.booleans(),
    small=st.sampled_from(["pad", "drop"]),
    dtype=st.sampled_from(["uint8", "float32"]),
    layout=st.sampled_from([None, "nhwc", "nchw"]),
    flip=st.booleans(),
    seed=st.integers(0, 2**63 - 1),
    epoch=st.integers(0, 2**31),
)
def test_raw_batch_nbytes_is_the_length_of_the_built_body(
    sizes: list[tuple[int, int]],
    crop: tuple[int, int],
    batch_size: int,
    drop_last: bool,
    small: Any,
    dtype: Dtype,
    layout: Layout | None,
    flip: bool,
    seed: int,
    epoch: int,
) -> None:
    source = coded_source([*sizes, crop], seed=1)  # one sample at least as large as the crop
    spec = BatchSpec(
        CropSpec(*crop, small=small, flip=flip),
        batch_size,
        seed,
        epoch,
        drop_last=drop_last,
        dtype=dtype,
        layout=layout,
    )
    usable = len(usable_indices(source, spec.crop))
    batches = (usable // batch_size) if drop_last else -(-usable // batch_size)
    for b in range(batches):
        body = encode_batch(make_batch(source, spec, b)).tobytes()
        assert raw_batch_nbytes(source, spec, b) == len(body)
    with pytest.raises(NotFoundError):
        raw_batch_nbytes(source, spec, batches)


@pytest.mark.parametrize(
    ("dtype", "layout", "shape"),
    [
        ("uint8", None, (5, 6, 7, 3)),
        ("uint8", "nchw", (5, 3, 6, 7)),
        ("float32", None, (5, 3, 6, 7)),
        ("float32", "nhwc", (5, 6, 7, 3)),
    ],
)
def test_layouts_hold_the_same_pixels(
    mem_source: MemorySource, dtype: Dtype, layout: Layout | None, shape: tuple[int, ...]
) -> None:
    crop = CropSpec(6, 7, flip=True)
    reference = make_batch(mem_source, BatchSpec(crop, 5, seed=3), 1)
    batch = make_batch(mem_source, BatchSpec(crop, 5, seed=3, dtype=dtype, layout=layout), 1)
    assert batch.image.shape == shape
    assert batch.image.dtype == np.dtype(dtype)
    image = batch.image if shape[-1] == 3 else batch.image.transpose(0, 2, 3, 1)
    want = reference.image.astype(np.float64)
    if dtype == "float32":
        want = (want / 255 - np.array(RGB_MEAN)) / np.array(RGB_STD)
    np.testing.assert_allclose(image, want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(batch.label, reference.label)
    assert batch.metadata["layout"] == (layout or ("nhwc" if dtype == "uint8" else "nchw"))


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_float32_normalisation_for_every_value(layout: Layout) -> None:
    values = np.arange(256, dtype=np.uint8)
    image = np.stack([values, values[::-1], np.roll(values, 7)], axis=-1).reshape(16, 16, 3)
    source = MemorySource("val", [np.ascontiguousarray(image)], [np.zeros((16, 16), np.uint8)])
    batch = make_crop(source, BatchSpec(CropSpec(16, 16), 1, dtype="float32", layout=layout))
    got = batch.image[0] if layout == "nhwc" else batch.image[0].transpose(1, 2, 0)
    want = (image / 255.0 - np.array(RGB_MEAN)) / np.array(RGB_STD)
    assert np.abs(got - want).max() <= 1e-6


def test_void_background(mem_source: MemorySource) -> None:
    crop: dict[str, Any] = {"height": 12, "width": 30, "small": "pad"}
    ignore = make_batch(mem_source, BatchSpec(CropSpec(**crop), 8, 5), 0)
    background = make_batch(mem_source, BatchSpec(CropSpec(**crop, void="background"), 8, 5), 0)
    void = ignore.label == IGNORE_INDEX
    assert void.any()
    assert (background.label[void] == 0).all()
    np.testing.assert_array_equal(background.label[~void], ignore.label[~void])
    np.testing.assert_array_equal(background.image, ignore.image)


@pytest.mark.parametrize("drop_last", [True, False])
def test_an_epoch_uses_each_usable_sample_once(mem_source: MemorySource, drop_last: bool) -> None:
    spec = BatchSpec(CropSpec(20, 20), batch_size=4, seed=9, epoch=2, drop_last=drop_last)
    usable = usable_indices(mem_source, spec.crop).tolist()
    seen: list[int] = []
    for b in range(len(usable) // 4 + (0 if drop_last else 1)):
        batch = make_batch(mem_source, spec, b)
        assert batch.index.dtype == np.int64
        seen += batch.index.tolist()
    with pytest.raises(NotFoundError, match="out of range"):
        make_batch(mem_source, spec, len(usable) // 4 + 1)
    assert len(seen) == len(set(seen))
    assert set(seen) <= set(usable)
    assert len(seen) == (len(usable) - len(usable) % 4 if drop_last else len(usable))


def test_rect_describes_the_crop(mem_source: MemorySource) -> None:
    batch = make_batch(mem_source, BatchSpec(CropSpec(10, 12), 6, seed=1), 0)
    assert batch.rect.dtype == np.int32
    for row, (index, rect) in enumerate(zip(batch.index, batch.rect.tolist(), strict=True)):
        top, left, height, width = rect
        assert (height, width) == (10, 12)
        window = mem_source.image(int(index))[top : top + 10, left : left + 12]
        np.testing.assert_array_equal(batch.image[row], window)


def test_seed_and_epoch_change_the_crops(mem_source: MemorySource) -> None:
    def crops(seed: int, epoch: int) -> bytes:
        return make_batch(
            mem_source, BatchSpec(CropSpec(10, 10), 4, seed, epoch), 0
        ).image.tobytes()

    assert crops(1, 0) == crops(1, 0)
    assert len({crops(1, 0), crops(2, 0), crops(1, 1)}) == 3


def test_crop_equals_the_samples_crop_in_a_batch(mem_source: MemorySource) -> None:
    spec = BatchSpec(CropSpec(9, 11, flip=True, scale=(0.5, 1.5)), 4, seed=12, epoch=3)
    batch = make_batch(mem_source, spec, 1)
    for row, index in enumerate(batch.index.tolist()):
        crop = make_crop(mem_source, spec, index=index)
        np.testing.assert_array_equal(crop.image[0], batch.image[row])
        np.testing.assert_array_equal(crop.label[0], batch.label[row])
        np.testing.assert_array_equal(crop.rect[0], batch.rect[row])


def test_crop_without_index_picks_a_usable_sample(mem_source: MemorySource) -> None:
    crop = CropSpec(25, 25)
    usable = usable_indices(mem_source, crop).tolist()
    picked = {int(make_crop(mem_source, BatchSpec(crop, 1, s)).index[0]) for s in range(30)}
    assert picked <= set(usable)
    assert len(picked) > 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"index": 99}, NotFoundError, r"index 99 out of range.*0\.\.11"),
        ({"index": -1}, NotFoundError, "out of range"),
        ({"index": 0, "crop": CropSpec(39, 39)}, InvalidParameterError, "index: sample 0 is"),
        ({"crop": CropSpec(100, 5)}, NoUsableSampleError, "height: no sample"),
    ],
)
def test_crop_errors(
    mem_source: MemorySource, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    crop = kwargs.pop("crop", CropSpec(8, 8))
    with pytest.raises(error, match=match):
        make_crop(mem_source, BatchSpec(crop, 1), **kwargs)


def test_a_crop_is_a_batch_of_one(mem_source: MemorySource) -> None:
    spec = BatchSpec(CropSpec(8, 8, flip=True), 16, seed=4, epoch=2, dtype="float32")
    crop = make_crop(mem_source, spec, index=3)
    assert crop.image.shape == (1, 3, 8, 8)
    assert crop.metadata == {
        **make_batch(mem_source, replace(spec, batch_size=1), 0).metadata,
        "index": "3",
    }
    assert crop.metadata["batch_size"] == "1"


def test_small_sample_is_padded_under_pad(mem_source: MemorySource) -> None:
    batch = make_crop(mem_source, BatchSpec(CropSpec(60, 60, small="pad"), 1), index=0)
    assert batch.label.shape == (1, 60, 60)
    assert (batch.label[0, int(mem_source.heights[0]) :] == IGNORE_INDEX).all()


def test_metadata(mem_source: MemorySource) -> None:
    spec = BatchSpec(CropSpec(8, 8, scale=(0.5, 2.0)), 2, seed=4, epoch=1, dtype="float32")
    meta = make_batch(mem_source, spec, 3).metadata
    assert meta["split"] == "train"
    assert (meta["seed"], meta["epoch"], meta["batch"]) == ("4", "1", "3")
    assert (meta["height"], meta["scale"], meta["layout"]) == ("8", "0.5,2.0", "nchw")
    assert all(isinstance(v, str) for v in meta.values())
    crop_meta = make_crop(mem_source, BatchSpec(CropSpec(8, 8), 1, seed=4), index=2).metadata
    assert (crop_meta["index"], crop_meta["batch"], crop_meta["split"]) == ("2", "0", "train")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"epoch": -1}, "epoch"),
        ({"shuffle": "yes"}, "shuffle"),
        ({"drop_last": None}, "drop_last"),
        ({"dtype": "float16"}, "dtype"),
        ({"layout": "hwc"}, "layout"),
    ],
)
def test_batch_spec_rejects(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        BatchSpec(CropSpec(4, 4), **kwargs)
    assert info.value.parameter == parameter


@pytest.mark.parametrize(
    ("spec", "parameter", "match"),
    [
        (BatchSpec(CropSpec(4, 4), batch_size=300), "batch_size", "between 1 and 256, got 300"),
        (BatchSpec(CropSpec(5000, 4000)), "height", "at most 16777216"),
        (BatchSpec(CropSpec(10, 2_000_000)), "width", "at most 16777216"),
    ],
)
def test_limits(spec: BatchSpec, parameter: str, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match) as info:
        validate_batch(spec, max_batch_size=256, max_crop_pixels=4096 * 4096)
    assert info.value.parameter == parameter
    assert validate_batch(spec, max_batch_size=1000, max_crop_pixels=10**9) is spec


def test_validate_crop_limit() -> None:
    crop = CropSpec(100, 100)
    assert validate_crop(crop, 10_000) is crop
    with pytest.raises(InvalidParameterError, match="at most 9999"):
        validate_crop(crop, 9_999)
