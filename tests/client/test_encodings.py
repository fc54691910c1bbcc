"""The client decodes every transport encoding back to the arrays of ``raw``."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pytest
from segserve_client.batch import Batch
from segserve_client.errors import InvalidParameterError, ProtocolError, RequestError
from segserve_client.http import SegClient
from segserve_client.loader import BatchLoader
from segserve_client.protocol import wire
from segserve_client.protocol.encoding import Transport, encode_tensors
from segserve_client.request import BatchRequest

from tests.client.fakeserver import FakeServer, Reply, Request
from tests.client.live import CROP, LiveServer

MakeClient = Callable[..., SegClient]
SIZE: dict[str, Any] = {"height": CROP[0], "width": CROP[1]}


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
    request = BatchRequest(*CROP, batch_size=4, encoding=encoding)  # type: ignore[arg-type]
    loaded = list(BatchLoader(client, "train", request))
    assert len(streamed) == len(loaded) > 1
    for a, b in zip(streamed, loaded, strict=True):
        assert a.image.tobytes() == b.image.tobytes()
        assert a.label.tobytes() == b.label.tobytes()


def test_bad_quality_is_refused_before_sending(live: LiveServer, make_client: MakeClient) -> None:
    client = make_client(live.url)
    with pytest.raises(RequestError, match="quality: must be an integer 1-100"):
        client.batch("train", 0, encoding="jpeg", quality=0, **SIZE)
    with pytest.raises(InvalidParameterError, match="quality: applies only to encoding=jpeg"):
        client.session.get(
            "/v1/splits/train/batches/0",
            {"quality": "5", **{k: str(v) for k, v in SIZE.items()}},
            client.session.read_batch,
        )


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


def test_request_sends_encoding_and_quality_only_when_asked() -> None:
    assert "encoding" not in BatchRequest(*CROP).query("batch")
    jpeg = BatchRequest(*CROP, encoding="jpeg", quality=80)
    for endpoint in ("batch", "stream", "crop"):
        query = jpeg.query(endpoint)
        assert (query["encoding"], query["quality"]) == ("jpeg", "80")
    assert "encoding" not in jpeg.query("split")
    assert BatchRequest(*CROP, encoding="lossless").query("batch")["encoding"] == "lossless"


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"encoding": "png"}, "encoding"),
        ({"encoding": "jpeg", "quality": 0}, "quality"),
        ({"encoding": "jpeg", "quality": 101}, "quality"),
        ({"encoding": "jpeg", "quality": 9.5}, "quality"),
        ({"quality": 90}, "quality"),
        ({"encoding": "lossless", "dtype": "float32"}, "dtype"),
        ({"encoding": "jpeg", "layout": "nchw"}, "layout"),
    ],
)
def test_request_refuses_bad_transports(params: dict[str, Any], name: str) -> None:
    with pytest.raises(RequestError, match=f"^{name}: "):
        BatchRequest(*CROP, **params)


@pytest.mark.mxnet
def test_load_data_voc_with_jpeg_keeps_labels(live: LiveServer) -> None:
    pytest.importorskip("mxnet", reason="needs the mxnet extra")
    from segserve_client.gluon import load_data_voc

    raw_train, _ = load_data_voc(4, CROP, live.url)
    jpeg_train, _ = load_data_voc(4, CROP, live.url, encoding="jpeg")
    try:
        (x_raw, y_raw), (x_jpeg, y_jpeg) = next(iter(raw_train)), next(iter(jpeg_train))
    finally:
        raw_train.close()
        jpeg_train.close()
    assert x_jpeg.shape == x_raw.shape
    assert (y_jpeg.asnumpy() == y_raw.asnumpy()).all()
    assert abs(x_jpeg.asnumpy() - x_raw.asnumpy()).mean() < 0.2


@pytest.mark.torch
def test_torch_dataset_with_lossless_equals_raw(live: LiveServer) -> None:
    pytest.importorskip("torch", reason="needs PyTorch")
    from segserve_client.torch import RemoteVOCSegmentation

    def first(**kwargs: Any) -> Any:
        dataset = RemoteVOCSegmentation(live.url, "train", *CROP, batch_size=4, **kwargs)
        return next(iter(dataset))

    raw, lossless = first(), first(encoding="lossless")
    assert (raw["image"] == lossless["image"]).all()
    assert (raw["label"] == lossless["label"]).all()


def test_leaving_an_encoded_stream_early_lets_the_client_go_on(
    live: LiveServer, make_client: MakeClient
) -> None:
    client = make_client(live.url)
    request = BatchRequest(*CROP, batch_size=2, encoding="lossless")
    stream = cast(Generator[Batch, None, None], client.stream_epoch("train", 1, request))
    first = next(stream)
    stream.close()  # the prefetch threads and the connection are let go
    assert first.image.shape == (2, *CROP, 3)
    again = client.batch("train", 0, request.replace(epoch=1))
    assert again.image.tobytes() == first.image.tobytes()
