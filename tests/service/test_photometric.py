"""Photometric distortion: mmsegmentation's steps, ranges and order, on uint8 pixels."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.photometric import NUM_UNIFORMS, Distortion, distort, draw_distortion
from service.sampling import F64Array, sample_uniforms
from service.source import U8Array

PIXELS = np.random.default_rng(5).integers(0, 256, (12, 10, 3), dtype=np.uint8)


def _convert(img: U8Array, alpha: float = 1.0, beta: float = 0.0) -> U8Array:
    """mmsegmentation's PhotoMetricDistortion.convert, as written there."""
    out = img.astype(np.float32) * alpha + beta
    return np.clip(out, 0, 255).astype(np.uint8)


def _applied(d: Distortion, pixels: U8Array = PIXELS) -> U8Array:
    region = pixels.copy()
    distort(region, d)
    return region


@pytest.mark.parametrize("beta", [-32.0, -7.5, 0.25, 31.9])
def test_brightness_is_mmsegmentations_convert(beta: float) -> None:
    assert np.array_equal(
        _applied(Distortion(beta, None, True, None, None)), _convert(PIXELS, beta=beta)
    )


@pytest.mark.parametrize("first", [True, False])
def test_brightness_then_contrast(first: bool) -> None:
    got = _applied(Distortion(12.5, 1.3, first, None, None))
    assert np.array_equal(got, _convert(_convert(PIXELS, beta=12.5), alpha=1.3))


def _reference_hsv(pixels: U8Array, saturation: float, hue_degrees: float) -> F64Array:
    out = np.empty(pixels.shape, np.float64)
    for index in np.ndindex(pixels.shape[:2]):
        h, s, v = colorsys.rgb_to_hsv(*(pixels[index] / 255.0))
        rgb = colorsys.hsv_to_rgb((h + hue_degrees / 360) % 1.0, min(s * saturation, 1.0), v)
        out[index] = np.array(rgb) * 255
    return out


@pytest.mark.parametrize(("saturation", "hue"), [(1.0, 0), (1.4, None), (0.5, 17), (None, -18)])
def test_saturation_and_hue_follow_hsv(saturation: float | None, hue: int | None) -> None:
    got = _applied(Distortion(None, None, True, saturation, hue)).astype(np.float64)
    want = _reference_hsv(PIXELS, saturation or 1.0, 2.0 * (hue or 0))
    # 8-bit H, S and V (as mmsegmentation's OpenCV conversion) round to a few levels.
    assert np.abs(got - want).max() <= 8
    assert np.abs(got - want).mean() < 2


def test_contrast_last_comes_after_the_hsv_steps() -> None:
    hsv_only = _applied(Distortion(None, None, False, 1.3, None))
    assert np.array_equal(
        _applied(Distortion(None, 0.7, False, 1.3, None)), _convert(hsv_only, alpha=0.7)
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**40), st.integers(0, 1000))
def test_draws_are_in_mmsegmentations_ranges(seed: int, index: int) -> None:
    d = draw_distortion(sample_uniforms(seed, 0, index, NUM_UNIFORMS))
    assert d.brightness is None or -32 <= d.brightness < 32
    assert d.contrast is None or 0.5 <= d.contrast < 1.5
    assert d.saturation is None or 0.5 <= d.saturation < 1.5
    assert d.hue is None or (isinstance(d.hue, int) and -18 <= d.hue <= 17)


def test_each_step_is_drawn_half_of_the_time() -> None:
    draws = [draw_distortion(sample_uniforms(1, 0, i, NUM_UNIFORMS)) for i in range(4000)]
    for step in ("brightness", "contrast", "saturation", "hue"):
        share = sum(getattr(d, step) is not None for d in draws) / len(draws)
        assert 0.45 < share < 0.55, step
    assert 0.45 < sum(d.contrast_first for d in draws) / len(draws) < 0.55


def test_a_flipped_view_is_distorted_in_place() -> None:
    out = PIXELS.copy()
    distort(out[:, ::-1], Distortion(20.0, None, True, 1.2, 3))
    assert np.array_equal(out, _applied(Distortion(20.0, None, True, 1.2, 3)))
