"""Deterministic responses: same request, same bytes, from any app instance and any route."""

from __future__ import annotations

import pytest
from segserve_client.protocol.wire import FrameReader

from tests.app.conftest import CROP, MakeApp, TestClient, wait_ready

QUERY = f"height={CROP[0]}&width={CROP[1]}&batch_size=3&seed=11"


@pytest.mark.parametrize(
    "url",
    [
        f"/v1/splits/train/batches/2?{QUERY}&epoch=1",
        f"/v1/splits/train/batches/0?{QUERY}&dtype=float32&flip=true&scale=0.5,2",
        f"/v1/splits/val/batches/1?{QUERY}&small=pad&void=background&shuffle=false&drop_last=false",
        f"/v1/splits/train/crop?height={CROP[0]}&width={CROP[1]}&seed=4&flip=true",
        "/v1/splits/train/samples/5/label?format=safetensors",
    ],
)
def test_same_url_same_bytes_from_another_app(
    client: TestClient, make_app: MakeApp, url: str
) -> None:
    first = client.get(url)
    assert first.status_code == 200
    assert client.get(url).content == first.content
    other = make_app()
    with TestClient(other) as other_client:
        wait_ready(other)
        again = other_client.get(url)
    assert again.content == first.content
    assert again.headers["etag"] == first.headers["etag"]


def test_different_seeds_differ(client: TestClient) -> None:
    base = f"/v1/splits/train/batches/0?height={CROP[0]}&width={CROP[1]}&batch_size=3"
    assert client.get(base + "&seed=1").content != client.get(base + "&seed=2").content


@pytest.mark.parametrize(
    ("params", "step"), [("", 1), ("&shuffle=false&drop_last=false&small=pad", 1), ("", 2)]
)
def test_epoch_stream_frames_equal_single_batches(
    client: TestClient, params: str, step: int
) -> None:
    reader = FrameReader()
    frames = reader.feed(
        client.get(f"/v1/splits/train/epochs/3?{QUERY}{params}&step={step}").content
    )
    reader.close()
    size = f"height={CROP[0]}&width={CROP[1]}&batch_size=3"
    small, drop_last = "pad" in params, "drop_last=false" not in params
    info = client.get(
        f"/v1/splits/train?{size}&small={'pad' if small else 'drop'}"
        f"&drop_last={str(drop_last).lower()}"
    ).json()
    expected = range(0, info["batches"], step)
    assert len(frames) == len(expected) > 1
    for number, frame in zip(expected, frames, strict=True):
        batch = client.get(f"/v1/splits/train/batches/{number}?{QUERY}&epoch=3{params}")
        assert bytes(frame) == batch.content
