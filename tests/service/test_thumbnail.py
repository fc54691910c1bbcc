"""Thumbnails: shape within the square, aspect kept, labels by nearest pixel, bounds checked."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidParameterError
from service.thumbnail import (
    MAX_THUMBNAIL,
    MIN_THUMBNAIL,
    image_thumbnail,
    label_thumbnail,
    thumbnail_shape,
)
from tests.factories import SampleSpec, image_of, label_of

sides = st.integers(1, 3000)
sizes = st.integers(MIN_THUMBNAIL, MAX_THUMBNAIL)


@given(height=sides, width=sides, size=sizes)
def test_shape_fits_the_square_and_keeps_the_aspect(height: int, width: int, size: int) -> None:
    small_height, small_width = thumbnail_shape(height, width, size)
    assert 1 <= small_height <= height
    assert 1 <= small_width <= width
    assert max(small_height, small_width) == min(size, max(height, width))
    # Rounding moves each side by at most half a pixel of the scaled size.
    ratio = min(1.0, size / max(height, width))
    assert abs(small_height - height * ratio) <= 0.5 + 1e-9 or small_height == 1
    assert abs(small_width - width * ratio) <= 0.5 + 1e-9 or small_width == 1


@pytest.mark.parametrize("size", [MIN_THUMBNAIL - 1, 0, -5, MAX_THUMBNAIL + 1])
def test_sizes_out_of_range_name_the_parameter(size: int) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        thumbnail_shape(100, 100, size)
    assert caught.value.parameter == "size"
    assert f"between {MIN_THUMBNAIL} and {MAX_THUMBNAIL}" in caught.value.detail


def test_label_thumbnail_keeps_class_values_and_places() -> None:
    spec = SampleSpec("a", 300, 500, classes=(15, 3))
    label = label_of(spec)
    small = label_thumbnail(label, 100)
    assert small.shape == (60, 100)
    assert small.dtype == np.uint8
    assert set(np.unique(small)) <= set(np.unique(label))
    # Each thumbnail pixel is the source pixel at the centre of its 5 x 5 cell.
    assert np.array_equal(small, label[2::5, 2::5])


def test_image_thumbnail_is_a_smaller_picture_of_the_same_scene() -> None:
    spec = SampleSpec("a", 240, 320, classes=(1,))
    image = image_of(spec)
    small = image_thumbnail(image, 80)
    assert small.shape == (60, 80, 3)
    assert small.dtype == np.uint8
    box = image.reshape(60, 4, 80, 4, 3).mean(axis=(1, 3))
    assert np.abs(small.astype(float) - box).mean() < 8


def test_pictures_that_fit_are_returned_unchanged() -> None:
    spec = SampleSpec("a", 40, 60, classes=(2,))
    image, label = image_of(spec), label_of(spec)
    assert image_thumbnail(image, 64) is image
    assert label_thumbnail(label, 60) is label
