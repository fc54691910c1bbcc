"""Label decoding: palette and RGB pictures, void handling, PNG and colour rendering."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from service.errors import InvalidParameterError
from service.labels import apply_void, colorize, decode_label, label_to_png
from service.source import U8Array
from service.voc import IGNORE_COLOR, IGNORE_INDEX, VOC_COLORMAP, voc_palette
from tests.chapter_numpy import voc_colormap2label, voc_label_indices
from tests.factories import SampleSpec, label_of, label_picture, write_voc

# Hypothesis' per-example deadline would fail these on a busy machine; none of them is about speed.
NO_DEADLINE = settings(deadline=None)
LABEL_VALUES = [*range(len(VOC_COLORMAP)), IGNORE_INDEX]
SPECS = [
    SampleSpec("a", 30, 40, classes=(1, 15, 20)),
    SampleSpec("b", 17, 23, classes=(5,), border=1),
    SampleSpec("c", 40, 30, classes=(9, 2)),
]

labels_2d = arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)))
class_labels_2d = arrays(
    np.uint8,
    st.tuples(st.integers(1, 12), st.integers(1, 12)),
    elements=st.sampled_from(LABEL_VALUES),
)


def _reference_lookup(rgb: U8Array) -> U8Array:
    """Class of each colour by a plain dictionary; 255 outside the colormap."""
    classes = {color: index for index, color in enumerate(VOC_COLORMAP)}
    flat = [classes.get((int(r), int(g), int(b)), IGNORE_INDEX) for r, g, b in rgb.reshape(-1, 3)]
    return np.array(flat, dtype=np.uint8).reshape(rgb.shape[:2])


def _read(path: Path) -> Image.Image:
    with Image.open(path) as picture:
        picture.load()
        return picture


@pytest.mark.parametrize("mode", ["P", "L"])
@NO_DEADLINE
@given(values=labels_2d)
def test_index_pictures_keep_classes_and_255_and_void_the_rest(mode: str, values: U8Array) -> None:
    picture = Image.fromarray(values)
    if mode == "P":
        picture.putpalette(voc_palette())
    assert picture.mode == mode
    expected = np.where((values <= 20) | (values == IGNORE_INDEX), values, IGNORE_INDEX)
    decoded = decode_label(picture)
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, expected)


colormap_or_other = st.one_of(
    st.sampled_from([*VOC_COLORMAP, IGNORE_COLOR]),
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
)


@NO_DEADLINE
@given(
    st.integers(1, 8).flatmap(
        lambda width: st.lists(
            st.lists(colormap_or_other, min_size=width, max_size=width), min_size=1, max_size=8
        )
    )
)
def test_rgb_pictures_look_up_the_colormap_and_void_unknown_colours(rows: list[Any]) -> None:
    rgb = np.array(rows, dtype=np.uint8)
    np.testing.assert_array_equal(decode_label(Image.fromarray(rgb)), _reference_lookup(rgb))


@NO_DEADLINE
@given(label=class_labels_2d)
def test_palette_and_rgb_pictures_of_one_label_decode_alike(label: U8Array) -> None:
    from_palette = decode_label(label_picture(label, "P"))
    from_rgb = decode_label(label_picture(label, "RGB"))
    np.testing.assert_array_equal(from_palette, label)
    np.testing.assert_array_equal(from_rgb, label)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_other_modes_are_read_as_rgb(mode: str) -> None:
    label = np.array([[0, 1, 255], [15, 20, 7]], dtype=np.uint8)
    picture = label_picture(label, "P").convert(mode)
    np.testing.assert_array_equal(decode_label(picture), decode_label(picture.convert("RGB")))
    if mode == "RGBA":
        np.testing.assert_array_equal(decode_label(picture), label)


@pytest.mark.parametrize("label_mode", ["P", "RGB"])
def test_files_written_in_either_mode_decode_to_the_drawn_label(
    tmp_path: Path, label_mode: Any
) -> None:
    root = write_voc(tmp_path, SPECS, {"train": [s.name for s in SPECS]}, label_mode=label_mode)
    for spec in SPECS:
        picture = _read(root / "SegmentationClass" / f"{spec.name}.png")
        assert picture.mode == label_mode
        np.testing.assert_array_equal(decode_label(picture), label_of(spec))


def test_the_void_colour_and_unknown_colours_decode_to_255_or_background() -> None:
    rgb = np.array([[IGNORE_COLOR, (1, 2, 3), (128, 0, 0), (255, 255, 255)]], dtype=np.uint8)
    decoded = decode_label(Image.fromarray(rgb))
    np.testing.assert_array_equal(decoded, [[255, 255, 1, 255]])
    np.testing.assert_array_equal(apply_void(decoded, "background"), [[0, 0, 1, 0]])


@NO_DEADLINE
@given(label=class_labels_2d)
def test_apply_void(label: U8Array) -> None:
    assert apply_void(label, "ignore") is label
    background = apply_void(label, "background")
    np.testing.assert_array_equal(background, np.where(label == IGNORE_INDEX, 0, label))
    out = np.full_like(label, 77)
    assert apply_void(label, "background", out=out) is out
    np.testing.assert_array_equal(out, background)
    assert apply_void(label, "ignore", out=out) is out
    np.testing.assert_array_equal(out, label)


def test_apply_void_accepts_a_read_only_label() -> None:
    label = np.array([[255, 3]], dtype=np.uint8)
    label.flags.writeable = False
    np.testing.assert_array_equal(apply_void(label, "background"), [[0, 3]])


@pytest.mark.parametrize("void", ["Ignore", "none", ""])
def test_apply_void_rejects_unknown_modes(void: Any) -> None:
    with pytest.raises(InvalidParameterError, match="void"):
        apply_void(np.zeros((1, 1), np.uint8), void)


@NO_DEADLINE
@given(label=class_labels_2d)
def test_label_png_is_a_voc_palette_picture_of_the_label(label: U8Array) -> None:
    with Image.open(io.BytesIO(label_to_png(label))) as picture:
        assert picture.format == "PNG"
        assert picture.mode == "P"
        assert picture.getpalette() == voc_palette()
        np.testing.assert_array_equal(decode_label(picture), label)
        np.testing.assert_array_equal(np.asarray(picture.convert("RGB")), colorize(label))


def test_colorize_uses_the_colormap_and_the_ignore_colour() -> None:
    label = np.array([[0, 1, 20, 255]], dtype=np.uint8)
    expected = [[VOC_COLORMAP[0], VOC_COLORMAP[1], VOC_COLORMAP[20], IGNORE_COLOR]]
    colors = colorize(label)
    assert colors.shape == (1, 4, 3)
    assert colors.dtype == np.uint8
    np.testing.assert_array_equal(colors, expected)


@pytest.fixture(scope="module")
def chapter_table() -> npt.NDArray[np.int64]:
    return voc_colormap2label()


@pytest.mark.parametrize("label_mode", ["P", "RGB"])
def test_background_void_equals_the_chapter_on_the_same_files(
    tmp_path: Path, label_mode: Any, chapter_table: npt.NDArray[np.int64]
) -> None:
    root = write_voc(tmp_path, SPECS, {"train": [s.name for s in SPECS]}, label_mode=label_mode)
    for spec in SPECS:
        picture = _read(root / "SegmentationClass" / f"{spec.name}.png")
        chapter = voc_label_indices(np.asarray(picture.convert("RGB")), chapter_table)
        engine = apply_void(decode_label(picture), "background")
        np.testing.assert_array_equal(engine, chapter)


@NO_DEADLINE
@given(rgb=arrays(np.uint8, st.tuples(st.integers(1, 10), st.integers(1, 10), st.just(3))))
def test_background_void_equals_the_chapter_for_any_colours(
    rgb: U8Array, chapter_table: npt.NDArray[np.int64]
) -> None:
    engine = apply_void(decode_label(Image.fromarray(rgb)), "background")
    np.testing.assert_array_equal(engine, voc_label_indices(rgb, chapter_table))
