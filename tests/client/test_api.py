"""SegClient's metadata and array calls against a live server."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from segserve_client import InvalidParameterError, NotFoundError, SegClient

from service.voc import IGNORE_INDEX, VOC_CLASSES, VOC_COLORMAP
from tests.client.live import CROP, TRAIN_SIZE, LiveServer

MakeClient = Callable[..., SegClient]


def test_dataset_classes_colormap(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    info = client.dataset()
    assert info["num_classes"] == 21
    assert {"name": "train", "size": TRAIN_SIZE} in info["splits"]
    assert [c["name"] for c in client.classes()] == list(VOC_CLASSES)
    assert [tuple(c) for c in client.colormap()["colors"]] == list(VOC_COLORMAP)


def test_image_and_label_of_a_sample(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    sample = client.sample("train", 5)
    image = client.image("train", 5)
    label = client.label("train", 5)
    background = client.label("train", 5, void="background")
    assert image.shape == (sample["height"], sample["width"], 3)
    assert label.shape == (sample["height"], sample["width"])
    assert (label == IGNORE_INDEX).any()
    np.testing.assert_array_equal(background, np.where(label == IGNORE_INDEX, 0, label))


def test_crop_is_aligned_with_the_label(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    crop = client.crop("train", height=CROP[0], width=CROP[1], index=7, seed=3)
    top, left, height, width = (int(v) for v in crop.rect[0])
    assert crop.index.tolist() == [7]
    assert (height, width) == CROP
    full = client.label("train", 7)
    np.testing.assert_array_equal(crop.label[0], full[top : top + height, left : left + width])
    image = client.image("train", 7)
    np.testing.assert_array_equal(crop.image[0], image[top : top + height, left : left + width])


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.sample("nosuchsplit", 0), NotFoundError),
        (lambda c: c.sample("train", TRAIN_SIZE), NotFoundError),
        (lambda c: c.batch("train", 10_000, height=CROP[0], width=CROP[1]), NotFoundError),
        (
            lambda c: c.batch("train", 0, height=CROP[0], width=CROP[1], batch_size=10_000),
            InvalidParameterError,
        ),
        (lambda c: c.crop("train", height=10_000, width=10_000), InvalidParameterError),
    ],
)
def test_errors_carry_the_servers_problem(
    live: LiveServer,
    make_client: MakeClient,
    call: Callable[[SegClient], object],
    error: type[Exception],
) -> None:
    with pytest.raises(error) as caught:
        call(make_client(live.url))
    assert isinstance(caught.value, NotFoundError | InvalidParameterError)
    assert caught.value.problem["status"] == caught.value.status
    assert caught.value.detail
