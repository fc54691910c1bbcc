"""The client decodes every transport encoding back to the arrays of ``raw``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from segserve_client.errors import InvalidParameterError, ProtocolError
from segserve_client.http import SegClient
from segserve_client.loader import BatchLoader
from segserve_client.protocol import wire
from segserve_client.protocol.encoding import Transport, encode_tensors

from tests.client.fakeserver import FakeServer, Reply, Request
from tests.client.live import CROP, LiveServer

MakeClient = Callable[..., SegClient]
SIZE = {"height": CROP[0], "width": CROP[1]}


@pytest.mark.parametrize("encoding", ["lossless", "jpeg"])
def test_batch_crop_stream_loader_decode(
    live: LiveServer, make_client: MakeClient, encoding: str
) -> None:
    client = make_client(live.url)
    raw = client.batch("train", 1, batch_size=4, seed=2, flip=True, **SIZE)
    got = client.batch("train", 1, batch_size=4, seed=2, flip=True, encoding=encoding, **SIZE)
    names = ["image", "index", "label", "rect"]
    assert sorted(got) == names
    same = names if encoding == "lossless" else ["index", "label", "rect"]
    for name in same:
        assert got[name].tobytes() == raw[name].tobytes()
    assert got.metadata["encoding"] == encoding
    crop = client.crop("train", index=3, seed=1, encoding=encoding, **SIZE)
    assert crop.image.shape == (1, *CROP, 3)
    streamed = list(client.stream_epoch("train", 0, batch_size=4, encoding=encoding, **SIZE))
    loaded = list(BatchLoader(client, "train", batch_size=4, encoding=encoding, **SIZE))
    assert len(streamed) == len(loaded) > 1
    for a, b in zip(streamed, loaded, strict=True):
        assert a.image.tobytes() == b.image.tobytes()
        assert a.label.tobytes() == b.label.tobytes()


def test_bad_quality_is_named(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    with pytest.raises(InvalidParameterError, match="quality"):
        client.batch("train", 0, encoding="jpeg", quality=0, **SIZE)


def _jpeg_body_with_bad_frame() -> bytes:
    tensors: dict[str, npt.NDArray[Any]] = {
        "image": np.zeros((2, 8, 8, 3), np.uint8),
        "label": np.zeros((2, 8, 8), np.uint8),
        "index": np.arange(2, dtype=np.int64),
        "rect": np.zeros((2, 4), np.int32),
    }
    encoded, metadata = encode_tensors(tensors, Transport("jpeg"))
    encoded["image.jpeg"] = np.zeros_like(encoded["image.jpeg"])
    return wire.encode(encoded, {"batch": "0", **metadata}).tobytes()


def test_a_malformed_encoded_body_is_a_protocol_error(
    serve: Callable[[Callable[[Request], Reply]], FakeServer], make_client: MakeClient
) -> None:
    body = _jpeg_body_with_bad_frame()
    server = serve(lambda request: Reply(200, body))
    client = make_client(server.url)
    with pytest.raises(ProtocolError, match=r"tensor 'image.jpeg': sample 0: bad JPEG"):
        client.batch("train", 0, encoding="jpeg", **SIZE)
