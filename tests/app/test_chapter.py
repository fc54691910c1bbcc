"""The d2l chapter's own definitions, checked against the server through HTTP.

The chapter's lists and functions come from :mod:`tests.chapter_numpy`, the
chapter's code in NumPy, independent of the code under test.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app.conftest import BROKEN, CROP, TestClient
from tests.chapter_numpy import (
    VOC_CLASSES,
    VOC_COLORMAP,
    chapter_filter,
    voc_colormap2label,
    voc_label_indices,
)


def _split_names(client: TestClient, split: str) -> list[str]:
    """The sample ids the server lists for ``split``, in order."""
    size = client.get(f"/v1/splits/{split}").json()["size"]
    return [client.get(f"/v1/splits/{split}/samples/{i}").json()["id"] for i in range(size)]


def test_classes_and_colormap_are_the_chapters(client: TestClient) -> None:
    classes = client.get("/v1/classes").json()
    assert [c["name"] for c in classes] == VOC_CLASSES
    assert [c["color"] for c in classes] == VOC_COLORMAP
    assert client.get("/v1/colormap").json()["colors"] == VOC_COLORMAP


@pytest.mark.parametrize("split", ["train", "val"])
def test_void_background_labels_are_voc_label_indices(
    client: TestClient, voc_root: Path, split: str
) -> None:
    lookup = voc_colormap2label()
    modes = set()
    for index, name in enumerate(_split_names(client, split)):
        with Image.open(voc_root / "SegmentationClass" / f"{name}.png") as picture:
            modes.add(picture.mode)
            expected = voc_label_indices(np.asarray(picture.convert("RGB")), lookup)
        url = f"/v1/splits/{split}/samples/{index}/label?void=background"
        served = np.load(io.BytesIO(client.get(url).content))
        assert np.array_equal(served, expected), name
    if split == "train":
        assert modes == {"P", "RGB"}, "both label encodings must be exercised"


@pytest.mark.parametrize("split", ["train", "val"])
def test_usable_count_is_the_chapters_filter(
    client: TestClient, voc_root: Path, split: str
) -> None:
    names = _split_names(client, split)
    listed = (voc_root / f"ImageSets/Segmentation/{split}.txt").read_text().split()
    assert names == [name for name in listed if name != BROKEN]
    images = [np.asarray(Image.open(voc_root / "JPEGImages" / f"{n}.jpg")) for n in names]
    kept = chapter_filter(images, CROP)
    info = client.get(f"/v1/splits/{split}?height={CROP[0]}&width={CROP[1]}").json()
    assert info["usable"] == len(kept)
    assert 0 < len(kept) < len(images)
