"""The training-recipe parameters: cat_max_ratio, photometric, crop_mode.

Each is checked against a model written out here independently of the engine
(mmsegmentation's loop, the canvas rule), as hypothesis properties.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segserve_client.protocol.wire import Encoded

from service.augment import (
    CAT_MAX_REDRAWS,
    REDRAW_COLUMN,
    SAMPLE_UNIFORMS,
    balanced,
    crop_rect,
    plan_sample,
)
from service.batch import Batch, encode_batch, make_batch, make_crop
from service.errors import InvalidParameterError, NoUsableSampleError
from service.params import BatchSpec, CropSpec
from service.sampling import sample_uniforms, usable_indices
from service.source import U8Array
from service.voc import IGNORE_INDEX
from tests.service.memsource import MemorySource, coded_source, random_source

FAST = settings(max_examples=40, deadline=None)
SIZES = [(30, 38), (12, 40), (40, 12), (20, 20), (25, 33), (19, 40),
         (40, 19), (33, 25), (16, 16), (22, 39), (38, 22), (12, 12)]  # fmt: skip


def _body(encoded: Encoded) -> bytes:
    return b"".join(bytes(chunk) for chunk in encoded.chunks())


def _digest(batch: Batch) -> str:
    return hashlib.sha256(_body(encode_batch(batch))).hexdigest()


# Digests of batches written before the recipe parameters existed: the defaults
# (cat_max_ratio=1, photometric off, crop_mode=random) must keep these bytes.
BEFORE = {
    "plain": "221454bdc35e576705020caa3280a77a0db0c168d1aa900eae2fa3029faf8de6",
    "flip_scale": "d45bc3d73a069b844ee0e37779cbd842e2a68a8d11aa361d654df5901984e45a",
    "pad_float": "6e9f126f78d18e4c4a7e13d43e41113dfdb4877d61ceaede4072692e4742adec",
}
SPECS = {
    "plain": BatchSpec(CropSpec(16, 16), batch_size=4, seed=3),
    "flip_scale": BatchSpec(
        CropSpec(16, 16, flip=True, scale=(0.5, 2.0)), batch_size=4, seed=5, epoch=2
    ),
    "pad_float": BatchSpec(
        CropSpec(20, 24, small="pad", flip=True, void="background"),
        batch_size=5,
        seed=7,
        dtype="float32",
    ),
}


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_defaults_give_the_bytes_of_before(name: str) -> None:
    source = coded_source(SIZES, seed=2)
    spec = SPECS[name]
    assert _digest(make_batch(source, spec, 1)) == BEFORE[name]
    explicit = dataclasses.replace(
        spec,
        crop=dataclasses.replace(spec.crop, cat_max_ratio=1, photometric=False, crop_mode="random"),
    )
    assert _digest(make_batch(source, explicit, 1)) == BEFORE[name]


# -- cat_max_ratio ------------------------------------------------------------------------


def _mmseg_balanced(window: U8Array, ratio: float) -> bool:
    """mmsegmentation's test, written as it is there: np.unique, drop ignore, compare."""
    labels, counts = np.unique(window, return_counts=True)
    counts = counts[labels != IGNORE_INDEX]
    return bool(len(counts) > 1 and np.max(counts) / np.sum(counts) < ratio)


def _mmseg_windows(
    height: int, width: int, crop: CropSpec, u: npt.NDArray[np.float64]
) -> list[tuple[int, int]]:
    """Window 0 and the 10 redraws (top, left) the uniforms give."""
    first = crop_rect(height, width, crop.height, crop.width, u[1], u[2])
    windows = [(first.top, first.left)]
    for redraw in range(CAT_MAX_REDRAWS):
        c = REDRAW_COLUMN + 2 * redraw
        rect = crop_rect(height, width, crop.height, crop.width, u[c], u[c + 1])
        windows.append((rect.top, rect.left))
    return windows


def _padded_window(label: U8Array, top: int, left: int, h: int, w: int) -> U8Array:
    padded = np.full((max(label.shape[0], h), max(label.shape[1], w)), IGNORE_INDEX, np.uint8)
    padded[: label.shape[0], : label.shape[1]] = label
    return padded[top : top + h, left : left + w]


@FAST
@given(
    st.integers(0, 2**40),
    st.integers(0, 11),
    st.sampled_from([0.3, 0.5, 0.75, 0.9, 0.99]),
    st.tuples(st.integers(2, 24), st.integers(2, 24)),
    st.booleans(),
)
def test_cat_max_ratio_is_mmsegmentations_loop(
    seed: int, index: int, ratio: float, size: tuple[int, int], pad: bool
) -> None:
    source = coded_source(SIZES, seed=4, block=3)
    crop = CropSpec(*size, small="pad" if pad else "drop", cat_max_ratio=ratio)
    if not pad and index not in usable_indices(source, crop).tolist():
        return
    label = source.label(index)
    u = sample_uniforms(seed, 1, index, SAMPLE_UNIFORMS)
    windows = _mmseg_windows(label.shape[0], label.shape[1], crop, u)
    checks = [_mmseg_balanced(_padded_window(label, t, left, *size), ratio) for t, left in windows]
    expected = next(
        (w for w, ok in zip(windows, checks[:CAT_MAX_REDRAWS], strict=False) if ok), windows[-1]
    )
    batch = make_crop(source, crop, seed, epoch=1, index=index)
    got = tuple(batch.rect[0][:2].tolist())
    assert got == expected
    accepted_by_check = any(checks[:CAT_MAX_REDRAWS])
    if accepted_by_check:
        assert _mmseg_balanced(batch.label[0], ratio)  # the accepted window satisfies the ratio
    else:
        assert got == windows[-1]  # all 10 checks failed: the last draw is kept
    again = make_crop(source, crop, seed, epoch=1, index=index)
    assert _digest(again) == _digest(batch)


def test_cat_max_ratio_changes_windows_on_one_class_heavy_labels() -> None:
    label = np.zeros((40, 40), np.uint8)
    label[30:, 30:] = 7  # a corner object; most random 16 x 16 windows are all background
    image = np.zeros((40, 40, 3), np.uint8)
    source = MemorySource("train", [image] * 30, [label] * 30)
    plain = make_batch(source, BatchSpec(CropSpec(16, 16), batch_size=30), 0)
    ratio = make_batch(source, BatchSpec(CropSpec(16, 16, cat_max_ratio=0.9), batch_size=30), 0)

    def share_ok(labels: U8Array) -> int:
        return sum(_mmseg_balanced(window, 0.9) for window in labels)

    assert share_ok(ratio.label) > share_ok(plain.label)
    assert np.array_equal(plain.index, ratio.index)


def test_cat_max_ratio_with_rescale_checks_the_rescaled_label() -> None:
    source = random_source([(30, 30)] * 4, seed=1)
    crop = CropSpec(12, 12, scale=(0.5, 2.0), cat_max_ratio=0.5)
    for i in range(4):
        plan_u = sample_uniforms(9, 0, i, SAMPLE_UNIFORMS)
        plan = plan_sample(30, 30, crop, plan_u, source.label(i))
        batch = make_crop(source, crop, 9, index=i)
        assert tuple(batch.rect[0].tolist()) == tuple(plan.rect)


def test_cat_max_ratio_needs_the_label() -> None:
    with pytest.raises(ValueError, match="label"):
        plan_sample(20, 20, CropSpec(8, 8, cat_max_ratio=0.5), np.zeros(SAMPLE_UNIFORMS))


@pytest.mark.parametrize("ratio", [0, -0.5, 1.01, float("nan"), float("inf"), True, "0.5"])
def test_cat_max_ratio_range(ratio: object) -> None:
    with pytest.raises(InvalidParameterError, match="cat_max_ratio: must be a number > 0 and <= 1"):
        CropSpec(8, 8, cat_max_ratio=ratio)  # type: ignore[arg-type]


# -- photometric --------------------------------------------------------------------------


@FAST
@given(
    st.integers(0, 2**40),
    st.integers(0, 5),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["uint8", "float32"]),
    st.sampled_from([1.0, 0.75]),
)
def test_photometric_changes_the_image_only(
    seed: int, epoch: int, flip: bool, scale: bool, dtype: str, ratio: float
) -> None:
    source = coded_source(SIZES, seed=6)
    crop = CropSpec(
        18, 22, small="pad", flip=flip, scale=(0.5, 2.0) if scale else None, cat_max_ratio=ratio
    )
    spec = BatchSpec(crop, batch_size=6, seed=seed, epoch=epoch, dtype=dtype)  # type: ignore[arg-type]
    distorted_spec = dataclasses.replace(spec, crop=dataclasses.replace(crop, photometric=True))
    plain = make_batch(source, spec, 1)
    distorted = make_batch(source, distorted_spec, 1)
    assert np.array_equal(plain.label, distorted.label)
    assert np.array_equal(plain.index, distorted.index)
    assert np.array_equal(plain.rect, distorted.rect)
    assert {k: v for k, v in distorted.metadata.items() if k != "photometric"} == plain.metadata
    assert distorted.metadata["photometric"] == "true"
    assert plain.image.shape == distorted.image.shape
    assert plain.image.dtype == distorted.image.dtype
    if dtype == "uint8":
        padding = plain.label == IGNORE_INDEX
        padded = (plain.image == 0).all(axis=-1) & padding
        assert (distorted.image[padded] == 0).all()  # padding stays black
    again = make_batch(source, distorted_spec, 1)
    assert np.array_equal(again.image, distorted.image)


def test_photometric_changes_most_images() -> None:
    source = random_source([(24, 24)] * 32, seed=3)
    plain = make_batch(source, BatchSpec(CropSpec(16, 16), batch_size=32), 0)
    distorted = make_batch(source, BatchSpec(CropSpec(16, 16, photometric=True), batch_size=32), 0)
    changed = [not np.array_equal(a, b) for a, b in zip(plain.image, distorted.image, strict=True)]
    # Each of the four steps is skipped with probability 1/2: all four with 1/16.
    assert 20 <= sum(changed) < 32


# -- crop_mode ----------------------------------------------------------------------------


@FAST
@given(
    st.lists(st.tuples(st.integers(3, 30), st.integers(3, 30)), min_size=1, max_size=8),
    st.tuples(st.integers(8, 32), st.integers(8, 32)),
    st.integers(1, 4),
    st.booleans(),
    st.sampled_from(["ignore", "background"]),
)
def test_full_covers_each_image_once_with_the_right_padding(
    sizes: list[tuple[int, int]], canvas: tuple[int, int], batch_size: int, flip: bool, void: str
) -> None:
    source = random_source(sizes, seed=len(sizes))
    fits = [i for i, (h, w) in enumerate(sizes) if h <= canvas[0] and w <= canvas[1]]
    crop = CropSpec(*canvas, crop_mode="full", flip=flip, void=void)  # type: ignore[arg-type]
    if not fits:
        with pytest.raises(NoUsableSampleError, match="crop_mode=full: no sample"):
            usable_indices(source, crop)
        return
    spec = BatchSpec(crop, batch_size=batch_size, shuffle=False, drop_last=False)
    seen: list[int] = []
    batch_number = 0
    while len(seen) < len(fits):
        batch = make_batch(source, spec, batch_number)
        batch_number += 1
        for k, index in enumerate(batch.index.tolist()):
            seen.append(index)
            h, w = sizes[index]
            assert batch.rect[k].tolist() == [0, 0, h, w]
            image, label = source.image(index), source.label(index)
            if flip and sample_uniforms(0, 0, index, 4)[3] < 0.5:  # mirrored in place
                image, label = image[:, ::-1], label[:, ::-1]
            expected_label = label if void == "ignore" else np.where(label == 255, 0, label)
            assert np.array_equal(batch.image[k, :h, :w], image)
            assert np.array_equal(batch.label[k, :h, :w], expected_label)
            assert (batch.image[k, h:] == 0).all()
            assert (batch.image[k, :, w:] == 0).all()
            fill = IGNORE_INDEX if void == "ignore" else 0
            assert (batch.label[k, h:] == fill).all()
            assert (batch.label[k, :, w:] == fill).all()
    assert seen == fits  # every image that fits, once, in split order


def test_full_with_a_canvas_smaller_than_every_image_says_so() -> None:
    source = random_source([(20, 30), (25, 22)], seed=0)
    with pytest.raises(NoUsableSampleError, match=r"height: crop_mode=full.*lowest image is 20"):
        usable_indices(source, CropSpec(10, 40, crop_mode="full"))
    with pytest.raises(NoUsableSampleError, match=r"width: crop_mode=full.*at least 30 wide"):
        usable_indices(source, CropSpec(20, 29, crop_mode="full"))
    with pytest.raises(InvalidParameterError, match="index: sample 1 is 25 x 22, larger"):
        make_crop(source, CropSpec(24, 40, crop_mode="full"), 0, index=1)


@FAST
@given(st.integers(0, 2**40), st.tuples(st.integers(1, 12), st.integers(1, 12)), st.booleans())
def test_center_is_the_centred_window(seed: int, size: tuple[int, int], pad: bool) -> None:
    source = coded_source(SIZES, seed=1)
    crop = CropSpec(*size, crop_mode="center", small="pad" if pad else "drop")
    batch = make_batch(source, BatchSpec(crop, batch_size=3, seed=seed), 0)
    for k, index in enumerate(batch.index.tolist()):
        h, w = SIZES[index]
        top, left = max(h - size[0], 0) // 2, max(w - size[1], 0) // 2
        assert batch.rect[k].tolist() == [top, left, *size]
        rows, cols = min(size[0], h - top), min(size[1], w - left)
        window = source.label(index)[top : top + rows, left : left + cols]
        assert np.array_equal(batch.label[k, :rows, :cols], window)


@pytest.mark.parametrize(
    ("params", "name", "detail"),
    [
        ({"crop_mode": "middle"}, "crop_mode", "must be one of random, center, full"),
        ({"crop_mode": "center", "cat_max_ratio": 0.5}, "cat_max_ratio", "redraws random windows"),
        ({"crop_mode": "full", "scale": (0.5, 2.0)}, "scale", "must be none with crop_mode=full"),
        ({"photometric": 1}, "photometric", "must be true or false"),
    ],
)
def test_recipe_combinations_are_checked(params: dict[str, object], name: str, detail: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"{name}: {detail}"):
        CropSpec(8, 8, **params)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("window", "ratio", "ok"),
    [
        ([[1, 1], [1, 2]], 0.75, False),  # a share of exactly r is too much (mmseg's "<")
        ([[1, 1], [1, 2]], 0.76, True),
        ([[1, 1], [1, 255]], 0.99, False),  # one class only
        ([[255, 255], [255, 255]], 0.5, False),  # nothing labelled
        ([[0, 3], [255, 255]], 0.51, True),  # ignore pixels do not count
    ],
)
def test_balanced_is_mmsegmentations_test(window: list[list[int]], ratio: float, ok: bool) -> None:
    labels = np.array(window, np.uint8)
    assert balanced(labels, ratio) is ok
    assert _mmseg_balanced(labels, ratio) == ok
