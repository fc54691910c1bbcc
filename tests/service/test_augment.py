"""Augmentation: crop rectangles, padding, flips and rescales of one sample."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from service.augment import (
    NUM_UNIFORMS,
    Rect,
    SamplePlan,
    crop_rect,
    nearest_sources,
    plan_sample,
    scaled_size,
    write_crop,
)
from service.errors import InvalidParameterError
from service.params import MAX_SCALE, CropSpec, parse_scale
from service.sampling import sample_uniforms
from service.source import U8Array
from tests.service.memsource import random_source

FAST = settings(max_examples=80, deadline=None)
UNIT = st.floats(0.0, 1.0, exclude_max=True)
SIDE = st.integers(1, 48)


@FAST
@given(height=SIDE, width=SIDE, crop_h=SIDE, crop_w=SIDE, u_top=UNIT, u_left=UNIT)
def test_crop_rect_is_inside_the_padded_image(
    height: int, width: int, crop_h: int, crop_w: int, u_top: float, u_left: float
) -> None:
    rect = crop_rect(height, width, crop_h, crop_w, u_top, u_left)
    assert (rect.height, rect.width) == (crop_h, crop_w)
    assert 0 <= rect.top <= max(height, crop_h) - crop_h
    assert 0 <= rect.left <= max(width, crop_w) - crop_w


@pytest.mark.parametrize(("u", "expected"), [(0.0, 0), (0.5, 5), (0.999999, 10)])
def test_crop_offsets_reach_both_ends(u: float, expected: int) -> None:
    assert crop_rect(30, 30, 20, 20, u, u).top == expected


@FAST
@given(height=SIDE, width=SIDE, scale=st.tuples(st.floats(0.05, 4.0), st.floats(0.0, 4.0)))
def test_scaled_size_follows_the_factor_range(
    height: int, width: int, scale: tuple[float, float]
) -> None:
    lo, hi = scale[0], scale[0] + scale[1]
    crop = CropSpec(8, 8, small="pad", scale=(lo, hi))
    for u in (0.0, 0.37, 0.99):
        plan = plan_sample(height, width, crop, np.array([u, 0.0, 0.0, 0.0]))
        assert scaled_size(height, width, lo)[0] <= plan.height <= scaled_size(height, width, hi)[0]
        assert scaled_size(height, width, lo)[1] <= plan.width <= scaled_size(height, width, hi)[1]


def reference_crop(image: U8Array, label: U8Array, plan: SamplePlan) -> tuple[U8Array, U8Array]:
    """Rescale the whole sample with Pillow, pad it, crop it, flip it: the slow way."""
    if (plan.height, plan.width) != label.shape:
        size = (plan.width, plan.height)
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        label = np.asarray(Image.fromarray(label).resize(size, Image.Resampling.NEAREST))
    r = plan.rect
    pad_h, pad_w = max(0, r.top + r.height - plan.height), max(0, r.left + r.width - plan.width)
    image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), constant_values=0)
    label = np.pad(label, ((0, pad_h), (0, pad_w)), constant_values=255)
    window = np.s_[r.top : r.top + r.height, r.left : r.left + r.width]
    image, label = image[window], label[window]
    return (image[:, ::-1], label[:, ::-1]) if plan.flip else (image, label)


def run_crop(
    source_size: tuple[int, int], crop: CropSpec, seed: int
) -> tuple[SamplePlan, tuple[U8Array, U8Array], tuple[U8Array, U8Array]]:
    source = random_source([source_size], seed=seed)
    plan = plan_sample(*source_size, crop, sample_uniforms(seed, 0, 0, NUM_UNIFORMS))
    out_image = np.full((crop.height, crop.width, 3), 77, np.uint8)
    out_label = np.full((crop.height, crop.width), 77, np.uint8)
    write_crop(source.image(0), source.label(0), plan, out_image, out_label)
    expected = reference_crop(source.image(0), source.label(0), plan)
    return plan, (out_image, out_label), expected


@FAST
@given(size=st.tuples(SIDE, SIDE), crop=st.tuples(SIDE, SIDE), flip=st.booleans(), seed=SIDE)
def test_crop_without_scale_is_exact(
    size: tuple[int, int], crop: tuple[int, int], flip: bool, seed: int
) -> None:
    spec = CropSpec(*crop, small="pad", flip=flip)
    _, (image, label), (want_image, want_label) = run_crop(size, spec, seed)
    np.testing.assert_array_equal(image, want_image)
    np.testing.assert_array_equal(label, want_label)


def ties(start: int, count: int, size: int, scaled: int) -> npt.NDArray[np.bool_]:
    """Positions whose nearest source pixel sits exactly between two (float rounding decides)."""
    p = np.arange(start, start + count)
    tied: npt.NDArray[np.bool_] = ((2 * p + 1) * size) % (2 * scaled) == 0
    return tied


@FAST
@given(
    size=st.tuples(SIDE, SIDE),
    crop=st.tuples(SIDE, SIDE),
    flip=st.booleans(),
    seed=SIDE,
    lo=st.floats(0.1, 4.0),
)
def test_crop_with_scale_matches_rescaling_the_whole_sample(
    size: tuple[int, int], crop: tuple[int, int], flip: bool, seed: int, lo: float
) -> None:
    spec = CropSpec(*crop, small="pad", flip=flip, scale=(lo, 2 * lo))
    plan, (image, label), (want_image, want_label) = run_crop(size, spec, seed)
    # Resampling only the part under the crop moves Pillow's fixed-point
    # rounding a little: at most 3 levels of 255, measured at most 2.
    assert np.abs(image.astype(int) - want_image).max(initial=0) <= 3
    r = plan.rect
    tie = (
        ties(r.top, r.height, size[0], plan.height)[:, None]
        | ties(r.left, r.width, size[1], plan.width)[None, :]
    )
    if plan.flip:
        tie = tie[:, ::-1]
    np.testing.assert_array_equal(label[~tie], want_label[~tie])


def test_nearest_sources_is_pixel_centred() -> None:
    assert nearest_sources(0, 4, 2, 4).tolist() == [0, 0, 1, 1]
    assert nearest_sources(0, 2, 4, 2).tolist() == [1, 3]
    assert nearest_sources(1, 2, 3, 3).tolist() == [1, 2]


def test_flip_happens_about_half_the_time() -> None:
    crop = CropSpec(4, 4, flip=True)
    flips = [
        plan_sample(8, 8, crop, sample_uniforms(3, 0, i, NUM_UNIFORMS)).flip for i in range(400)
    ]
    assert 150 < sum(flips) < 250
    assert not any(plan_sample(8, 8, CropSpec(4, 4), np.full(4, 0.1)).flip for _ in range(3))


def test_padding_values() -> None:
    plan = SamplePlan(2, 3, Rect(0, 0, 4, 5), flip=False)
    image = np.full((2, 3, 3), 9, np.uint8)
    label = np.full((2, 3), 4, np.uint8)
    out_image, out_label = np.empty((4, 5, 3), np.uint8), np.empty((4, 5), np.uint8)
    write_crop(image, label, plan, out_image, out_label)
    assert (out_image[:2, :3] == 9).all()
    assert (out_label[:2, :3] == 4).all()
    assert out_image[2:].max() == 0
    assert out_image[:, 3:].max() == 0
    assert (out_label[2:] == 255).all()
    assert (out_label[:, 3:] == 255).all()


@pytest.mark.parametrize(
    ("text", "expected"), [("0.5,2.0", (0.5, 2.0)), ("1,1", (1.0, 1.0)), (" 0.25 , 4", (0.25, 4.0))]
)
def test_parse_scale(text: str, expected: tuple[float, float]) -> None:
    assert parse_scale(text) == expected


@pytest.mark.parametrize(
    "text", ["", "1", "1,2,3", "2,1", "0,1", "-1,2", "nan,1", "1,inf", "a,b", f"1,{MAX_SCALE * 2}"]
)
def test_parse_scale_rejects(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="scale: must be two numbers") as info:
        parse_scale(text)
    assert info.value.parameter == "scale"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"height": 0, "width": 4}, "height"),
        ({"height": 4, "width": -1}, "width"),
        ({"height": True, "width": 4}, "height"),
        ({"height": 4, "width": 4, "small": "crop"}, "small"),
        ({"height": 4, "width": 4, "void": "zero"}, "void"),
        ({"height": 4, "width": 4, "flip": 1}, "flip"),
        ({"height": 4, "width": 4, "scale": (2.0, 1.0)}, "scale"),
    ],
)
def test_crop_spec_rejects(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        CropSpec(**kwargs)
    assert info.value.parameter == parameter
