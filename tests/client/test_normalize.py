"""Trainer-side normalisation equals the chapter's ``(x / 255 - mean) / std``."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from segserve_client.normalize import labels_as_float, normalize

from service.voc import RGB_MEAN, RGB_STD


def chapter_normalize(images: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """The chapter's expression in float32, then its transpose to NCHW."""
    mean = np.asarray(RGB_MEAN, dtype=np.float32)
    std = np.asarray(RGB_STD, dtype=np.float32)
    return ((images.astype(np.float32) / 255 - mean) / std).transpose(0, 3, 1, 2)


batches = st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9)).flatmap(
    lambda s: arrays(np.uint8, (*s, 3))
)


@given(batches)
def test_equals_the_chapter(images: npt.NDArray[np.uint8]) -> None:
    result = normalize(images)
    assert result.dtype == np.float32
    assert result.flags.c_contiguous
    np.testing.assert_allclose(result, chapter_normalize(images), rtol=0, atol=1e-6)


def test_every_byte_value_in_every_channel() -> None:
    images = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, None, :, None], (1, 1, 256, 3))
    np.testing.assert_allclose(normalize(images), chapter_normalize(images), rtol=0, atol=1e-6)


def test_fills_the_given_output() -> None:
    images = np.full((2, 4, 5, 3), 255, dtype=np.uint8)
    out = np.zeros((2, 3, 4, 5), dtype=np.float32)
    assert normalize(images, out=out) is out
    np.testing.assert_allclose(out[:, 0], (1 - RGB_MEAN[0]) / RGB_STD[0], rtol=1e-6)


@pytest.mark.parametrize(
    ("images", "out"),
    [
        (np.zeros((1, 4, 5, 3), np.float32), None),
        (np.zeros((4, 5, 3), np.uint8), None),
        (np.zeros((1, 4, 5, 4), np.uint8), None),
        (np.zeros((1, 4, 5, 3), np.uint8), np.zeros((1, 4, 5, 3), np.float32)),
        (np.zeros((1, 4, 5, 3), np.uint8), np.zeros((1, 3, 4, 5), np.float64)),
    ],
)
def test_rejects_wrong_shapes(
    images: npt.NDArray[np.uint8], out: npt.NDArray[np.float32] | None
) -> None:
    with pytest.raises(ValueError, match=r"expected uint8|out must be"):
        normalize(images, out=out)


def test_labels_as_float() -> None:
    labels = np.array([[0, 20, 255]], dtype=np.uint8)
    out = np.empty((1, 3), np.float32)
    assert labels_as_float(labels, out=out) is out
    assert out.tolist() == [[0.0, 20.0, 255.0]]
    assert labels_as_float(labels).dtype == np.float32
