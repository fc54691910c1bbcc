"""Thumbnails over HTTP: sizes, media types, ETags and 304s, long cache lifetimes, bad sizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.thumbnail import MAX_THUMBNAIL, MIN_THUMBNAIL
from tests.app.conftest import TestClient

SAMPLE = "/v1/splits/train/samples"


def _picture(body: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(body))
    picture.load()
    return picture


@pytest.mark.parametrize("size", [MIN_THUMBNAIL, 20, 40])
def test_image_thumbnail_is_a_jpeg_fitting_the_square(shared_client: TestClient, size: int) -> None:
    for index in range(4):
        info = shared_client.get(f"{SAMPLE}/{index}").json()
        response = shared_client.get(f"{SAMPLE}/{index}/image", params={"size": size})
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        picture = _picture(response.content)
        assert picture.format == "JPEG"
        assert picture.mode == "RGB"
        longest = max(info["height"], info["width"])
        assert max(picture.size) == min(size, longest)
        assert picture.size[0] / picture.size[1] == pytest.approx(
            info["width"] / info["height"], rel=0.1
        )


def test_label_thumbnail_is_a_palette_png_of_the_same_classes(shared_client: TestClient) -> None:
    full = np.load(io.BytesIO(shared_client.get(f"{SAMPLE}/1/label").content))
    response = shared_client.get(f"{SAMPLE}/1/label", params={"format": "png", "size": 24})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    picture = _picture(response.content)
    assert picture.mode == "P"
    assert max(picture.size) == min(24, max(full.shape))
    values = set(np.unique(np.asarray(picture)).tolist())
    assert values <= set(np.unique(full).tolist())
    assert values - {0, 255}, "the thumbnail lost the sample's object classes"


def test_label_thumbnail_in_every_format_has_the_same_indices(shared_client: TestClient) -> None:
    params = {"size": 20, "void": "background"}
    npy = np.load(io.BytesIO(shared_client.get(f"{SAMPLE}/2/label", params=params).content))
    png = np.asarray(
        _picture(shared_client.get(f"{SAMPLE}/2/label", params={**params, "format": "png"}).content)
    )
    data = shared_client.get(f"{SAMPLE}/2/label", params={**params, "format": "json"}).json()[
        "data"
    ]
    assert max(npy.shape) <= 20
    assert np.array_equal(npy, png)
    assert np.array_equal(npy, np.array(data, dtype=np.uint8))
    assert 255 not in npy


def test_image_thumbnail_npy_and_png_agree(shared_client: TestClient) -> None:
    npy = np.load(
        io.BytesIO(
            shared_client.get(f"{SAMPLE}/0/image", params={"size": 30, "format": "npy"}).content
        )
    )
    png = np.asarray(
        _picture(
            shared_client.get(f"{SAMPLE}/0/image", params={"size": 30, "format": "png"}).content
        )
    )
    assert npy.dtype == np.uint8
    assert npy.ndim == 3
    assert np.array_equal(npy, png)


@pytest.mark.parametrize(
    ("path", "params"),
    [("image", {"size": 32}), ("label", {"size": 32, "format": "png"})],
)
def test_thumbnails_have_etags_304s_and_long_lifetimes(
    client: TestClient, path: str, params: dict[str, object]
) -> None:
    first = client.get(f"{SAMPLE}/3/{path}", params=params)
    etag = first.headers["etag"]
    assert "max-age=31536000" in first.headers["cache-control"]
    again = client.get(f"{SAMPLE}/3/{path}", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get(f"{SAMPLE}/3/{path}", params={**params, "size": 33})
    assert other.headers["etag"] != etag
    full = client.get(f"{SAMPLE}/3/{path}", params={k: v for k, v in params.items() if k != "size"})
    assert full.headers["etag"] != etag
    assert client.get(f"{SAMPLE}/3/{path}", params=params).content == first.content


@pytest.mark.parametrize(
    "size", ["0", str(MIN_THUMBNAIL - 1), str(MAX_THUMBNAIL + 1), "big", "1.5"]
)
@pytest.mark.parametrize("path", ["image", "label"])
def test_bad_sizes_are_422_naming_size_and_range(
    shared_client: TestClient, path: str, size: str
) -> None:
    response = shared_client.get(f"{SAMPLE}/0/{path}", params={"size": size})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert detail.startswith("size:")
    if size.lstrip("-").isdigit():
        assert f"between {MIN_THUMBNAIL} and {MAX_THUMBNAIL}" in detail
