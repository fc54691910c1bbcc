"""Transport encodings (protocol level): round trips, PSNR, layout, every malformed body."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import safetensors.numpy
import simplejpeg
from hypothesis import given, settings
from hypothesis import strategies as st
from segserve_client.protocol import wire
from segserve_client.protocol.encoding import (
    DEFAULT_QUALITY,
    ENCODINGS,
    Codec,
    Jpeg,
    SubZstd,
    Transport,
    Zstd,
    body_transport,
    decode_tensors,
    encode_tensors,
    transport_problem,
)

from bench.natural import missing_reason, natural_crops

FAST = settings(max_examples=40, deadline=None)
Tensors = dict[str, npt.NDArray[Any]]


def batch_tensors(rng: np.random.Generator, n: int, h: int, w: int) -> Tensors:
    """A batch with photograph-like smooth images and blocky labels (with 255 borders)."""
    ramp = np.linspace(0, 255, w, dtype=np.float64)[None, :, None]
    noise = rng.normal(0, 20, (n, h, w, 3))
    image = np.clip(ramp + noise, 0, 255).astype(np.uint8)
    label = rng.integers(0, 21, (n, 1, 1), dtype=np.uint8) * np.ones((n, h, w), np.uint8)
    label[:, : h // 3] = 255
    return {
        "image": image,
        "label": label,
        "index": rng.integers(0, 1000, n).astype(np.int64),
        "rect": rng.integers(0, 500, (n, 4)).astype(np.int32),
    }


def body(tensors: Tensors, transport: Transport) -> bytes:
    encoded, metadata = encode_tensors(tensors, transport)
    return wire.encode(encoded, {"split": "train", **metadata}).tobytes()


def decoded(data: bytes, **kwargs: Any) -> Tensors:
    arrays, metadata = wire.decode(data)
    return decode_tensors(arrays, metadata, **kwargs)


@FAST
@given(
    n=st.integers(1, 4),
    h=st.integers(1, 24),
    w=st.integers(1, 24),
    seed=st.integers(0, 2**32 - 1),
    extreme=st.booleans(),
)
def test_lossless_is_byte_identical(n: int, h: int, w: int, seed: int, extreme: bool) -> None:
    rng = np.random.default_rng(seed)
    tensors = batch_tensors(rng, n, h, w)
    if extreme:  # every byte value, differences wrapping both ways
        tensors["image"] = rng.integers(0, 256, tensors["image"].shape, dtype=np.uint8)
        tensors["label"][:] = rng.integers(0, 256, tensors["label"].shape, dtype=np.uint8)
    out = decoded(body(tensors, Transport("lossless")))
    assert sorted(out) == ["image", "index", "label", "rect"]
    for name, array in tensors.items():
        assert out[name].dtype == array.dtype
        assert out[name].tobytes() == array.tobytes()
        assert out[name].shape == array.shape


@FAST
@given(n=st.integers(1, 3), h=st.integers(8, 40), w=st.integers(8, 40), q=st.integers(1, 100))
def test_jpeg_keeps_label_index_rect(n: int, h: int, w: int, q: int) -> None:
    tensors = batch_tensors(np.random.default_rng(h * w + q), n, h, w)
    out = decoded(body(tensors, Transport("jpeg", q)))
    for name in ("label", "index", "rect"):
        assert out[name].tobytes() == tensors[name].tobytes()
    assert out["image"].shape == tensors["image"].shape
    assert out["image"].dtype == np.uint8


def test_raw_passes_through_unchanged() -> None:
    tensors = batch_tensors(np.random.default_rng(0), 2, 8, 8)
    encoded, metadata = encode_tensors(tensors, Transport())
    assert metadata == {}
    assert encoded == tensors


def psnr(reference: npt.NDArray[np.uint8], image: npt.NDArray[np.uint8]) -> npt.NDArray[Any]:
    error = (reference.astype(np.float64) - image.astype(np.float64)) ** 2
    mse = error.reshape(len(reference), -1).mean(axis=1)
    return np.asarray(10 * np.log10(255.0**2 / mse))


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_jpeg_psnr_on_photograph_crops_at_default_quality() -> None:
    crops = natural_crops(12, 320, 480, seed=5)
    n = len(crops)
    tensors: Tensors = {
        "image": crops,
        "label": np.zeros((n, 320, 480), np.uint8),
        "index": np.arange(n, dtype=np.int64),
        "rect": np.zeros((n, 4), np.int32),
    }
    data = body(tensors, Transport("jpeg"))
    values = psnr(crops, decoded(data)["image"])
    assert values.min() >= 40.0, values
    # and the point of it: far fewer bytes than the raw image
    assert len(data) < crops.nbytes / 3


def test_other_codec_settings_for_measurements() -> None:
    tensors = batch_tensors(np.random.default_rng(4), 2, 16, 24)
    other: dict[str, Codec] = {"image": Jpeg(subsampling="420"), "label": Zstd()}
    arrays, metadata = encode_tensors(tensors, Transport("jpeg"), codecs=other)
    frames, offsets = arrays["image.jpeg"], arrays["image.jpeg.offsets"]
    header = simplejpeg.decode_jpeg_header(frames[offsets[0] : offsets[1]].tobytes())
    assert header[3] == "420"
    # a decoder reads the subsampling from the frame: the same arrays come back
    out = decode_tensors(arrays, metadata)
    assert out["label"].tobytes() == tensors["label"].tobytes()
    assert out["image"].shape == tensors["image"].shape
    with pytest.raises(ValueError, match="do not match encoding=jpeg"):
        encode_tensors(tensors, Transport("jpeg"), codecs={"image": Jpeg()})
    with pytest.raises(ValueError, match="do not match encoding=lossless"):
        encode_tensors(tensors, Transport("lossless"), codecs=other)


def test_metadata_and_layout() -> None:
    tensors = batch_tensors(np.random.default_rng(1), 3, 10, 12)
    arrays, metadata = wire.decode(body(tensors, Transport("jpeg", 80)))
    assert metadata["encoding"] == "jpeg"
    assert metadata["quality"] == "80"
    assert metadata["image.shape"] == "3,10,12,3"
    assert metadata["label.shape"] == "3,10,12"
    assert sorted(arrays) == [
        "image.jpeg",
        "image.jpeg.offsets",
        "index",
        "label.zstd",
        "label.zstd.offsets",
        "rect",
    ]
    offsets = arrays["image.jpeg.offsets"]
    assert offsets.dtype == np.int64
    assert offsets[0] == 0
    assert offsets[-1] == arrays["image.jpeg"].size
    for i in range(3):  # each frame is a JPEG of its own
        frame = arrays["image.jpeg"][offsets[i] : offsets[i + 1]].tobytes()
        assert simplejpeg.decode_jpeg_header(frame)[:2] == (10, 12)
    default = wire.decode(body(tensors, Transport("jpeg")))[1]
    assert default["quality"] == str(DEFAULT_QUALITY)
    assert "quality" not in wire.decode(body(tensors, Transport("lossless")))[1]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_safetensors_opens_encoded_bodies(encoding: str) -> None:
    tensors = batch_tensors(np.random.default_rng(2), 2, 16, 16)
    data = body(tensors, Transport(encoding))  # type: ignore[arg-type]
    opened = safetensors.numpy.load(data)
    arrays, _ = wire.decode(data)
    assert sorted(opened) == sorted(arrays)
    for name, array in opened.items():
        assert array.tobytes() == arrays[name].tobytes()


@pytest.mark.parametrize("transport", [Transport("lossless"), Transport("jpeg", 70)])
def test_encoding_is_deterministic(transport: Transport) -> None:
    tensors = batch_tensors(np.random.default_rng(3), 3, 20, 30)
    assert body(tensors, transport) == body(tensors, transport)
    with ThreadPoolExecutor(2) as pool:
        encoded, metadata = encode_tensors(tensors, transport, pool.map)
    assert wire.encode(encoded, {"split": "train", **metadata}).tobytes() == body(
        tensors, transport
    )


def test_decoding_into_given_buffers_on_threads() -> None:
    tensors = batch_tensors(np.random.default_rng(4), 4, 16, 20)
    buffers = {
        "image": np.zeros(tensors["image"].shape, np.uint8),
        "label": np.zeros(tensors["label"].shape, np.uint8),
    }

    def allocate(name: str, shape: tuple[int, ...]) -> npt.NDArray[np.uint8]:
        assert shape == buffers[name].shape
        return buffers[name]

    with ThreadPoolExecutor(2) as pool:
        out = decoded(body(tensors, Transport("lossless")), allocate=allocate, mapper=pool.map)
    assert out["image"] is buffers["image"]
    assert out["label"] is buffers["label"]
    assert np.array_equal(buffers["image"], tensors["image"])


def test_a_wrong_buffer_is_refused() -> None:
    data = body(batch_tensors(np.random.default_rng(4), 2, 8, 8), Transport("lossless"))
    with pytest.raises(ValueError, match=r"'image.subzstd': allocate gave"):
        decoded(data, allocate=lambda name, shape: np.zeros((1,), np.uint8))


# -- malformed bodies: each a ValueError naming the tensor (or metadata key) ---------------

Mangle = Callable[[Tensors, dict[str, str]], None]


def _set(name: str, value: npt.NDArray[Any]) -> Mangle:
    def mangle(arrays: Tensors, metadata: dict[str, str]) -> None:
        arrays[name] = value

    return mangle


def _meta(key: str, value: str | None) -> Mangle:
    def mangle(arrays: Tensors, metadata: dict[str, str]) -> None:
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value

    return mangle


def _drop(name: str) -> Mangle:
    def mangle(arrays: Tensors, metadata: dict[str, str]) -> None:
        del arrays[name]

    return mangle


def _bytes(name: str, edit: Callable[[bytearray], bytes]) -> Mangle:
    def mangle(arrays: Tensors, metadata: dict[str, str]) -> None:
        arrays[name] = np.frombuffer(edit(bytearray(arrays[name].tobytes())), np.uint8)

    return mangle


def _offsets(name: str, edit: Callable[[list[int]], list[int]]) -> Mangle:
    def mangle(arrays: Tensors, metadata: dict[str, str]) -> None:
        arrays[name] = np.array(edit(arrays[name].tolist()), dtype=np.int64)

    return mangle


def _flip(data: bytearray, at: float) -> bytes:
    data[int(len(data) * at)] ^= 0x5A
    return bytes(data)


def _shift(bounds: list[int]) -> list[int]:
    return [bounds[0], bounds[1] + 3, *bounds[2:]]


def _swap(bounds: list[int]) -> list[int]:
    return [bounds[0], bounds[2], bounds[1], *bounds[3:]]


def _other_jpeg(arrays: Tensors, metadata: dict[str, str]) -> None:
    """Frame 0 replaced by a valid JPEG of another size (offsets kept consistent)."""
    offsets = arrays["image.jpeg.offsets"].tolist()
    other = Jpeg().encode(np.zeros((8, 9, 3), np.uint8))
    frames = arrays["image.jpeg"].tobytes()
    joined = other + frames[offsets[1] :]
    shift = len(other) - offsets[1]
    arrays["image.jpeg"] = np.frombuffer(joined, np.uint8)
    arrays["image.jpeg.offsets"] = np.array([0] + [o + shift for o in offsets[1:]], np.int64)


def _other_zstd(arrays: Tensors, metadata: dict[str, str]) -> None:
    """Every label frame replaced by a valid zstd frame of the wrong length."""
    frame = Zstd().encode(np.zeros(5, np.uint8))
    n = len(arrays["label.zstd.offsets"]) - 1
    arrays["label.zstd"] = np.frombuffer(frame * n, np.uint8)
    arrays["label.zstd.offsets"] = np.arange(n + 1, dtype=np.int64) * len(frame)


MALFORMED: list[tuple[str, str, Mangle, str]] = [
    ("jpeg", "truncated jpeg frame", _bytes("image.jpeg", lambda b: bytes(b[:-9])), "image.jpeg"),
    (
        "jpeg",
        "jpeg garbage",
        _bytes("image.jpeg", lambda b: bytes(len(b))),
        "'image.jpeg': sample 0",
    ),
    ("jpeg", "jpeg of another size", _other_jpeg, "JPEG is 8 x 9, expected 16 x 20"),
    ("jpeg", "quality out of range", _meta("quality", "101"), "metadata 'quality'"),
    ("jpeg", "quality not a number", _meta("quality", "high"), "metadata 'quality'"),
    ("lossless", "quality without jpeg", _meta("quality", "90"), "metadata 'quality'"),
    ("lossless", "unknown encoding", _meta("encoding", "webp"), "metadata 'encoding'"),
    (
        "lossless",
        "bit flip in zstd",
        _bytes("image.subzstd", lambda b: _flip(b, 0.6)),
        "image.subzstd",
    ),
    ("lossless", "truncated zstd", _bytes("label.zstd", lambda b: bytes(b[:-4])), "label.zstd"),
    (
        "lossless",
        "zstd garbage",
        _bytes("label.zstd", lambda b: bytes(len(b))),
        "'label.zstd': sample 0",
    ),
    ("lossless", "zstd of another size", _other_zstd, "holds 5 bytes, expected 320"),
    ("lossless", "offsets shifted", _offsets("image.subzstd.offsets", _shift), "image.subzstd"),
    (
        "lossless",
        "offsets decreasing",
        _offsets("label.zstd.offsets", _swap),
        "'label.zstd.offsets'",
    ),
    (
        "lossless",
        "offsets past the end",
        _offsets("label.zstd.offsets", lambda b: [*b[:-1], b[-1] + 1]),
        "'label.zstd.offsets': must rise from 0",
    ),
    (
        "lossless",
        "offsets not from 0",
        _offsets("label.zstd.offsets", lambda b: [1, *b[1:]]),
        "label.zstd.offsets",
    ),
    (
        "lossless",
        "offsets empty",
        _offsets("label.zstd.offsets", lambda b: []),
        "label.zstd.offsets",
    ),
    (
        "lossless",
        "offsets as I32",
        _set("label.zstd.offsets", np.zeros(3, np.int32)),
        "label.zstd.offsets",
    ),
    (
        "lossless",
        "frames not U8",
        _set("label.zstd", np.zeros(3, np.int16)),
        "'label.zstd': must be U8",
    ),
    ("lossless", "frames missing", _drop("image.subzstd"), "'image.subzstd': missing"),
    ("lossless", "offsets missing", _drop("label.zstd.offsets"), "'label.zstd': missing"),
    ("jpeg", "shape missing", _meta("image.shape", None), "metadata 'image.shape'"),
    ("jpeg", "shape not numbers", _meta("image.shape", "2,a,3,3"), "metadata 'image.shape'"),
    ("jpeg", "shape of the wrong rank", _meta("image.shape", "2,16,20"), "metadata 'image.shape'"),
    ("jpeg", "shape of another count", _meta("image.shape", "5,16,20,3"), "does not fit 2 frames"),
    ("lossless", "shape too large", _meta("label.shape", "2,999999999,999999999"), "exceeds"),
    ("lossless", "shape too small", _meta("label.shape", "2,16,19"), "'label.zstd': sample 0"),
    ("jpeg", "shape negative", _meta("label.shape", "2,-16,20"), "metadata 'label.shape'"),
]


@pytest.mark.parametrize(
    ("encoding", "case", "mangle", "message"), MALFORMED, ids=[row[1] for row in MALFORMED]
)
def test_malformed_body_is_a_value_error_naming_the_tensor(
    encoding: str, case: str, mangle: Mangle, message: str
) -> None:
    tensors = batch_tensors(np.random.default_rng(5), 2, 16, 20)
    arrays, metadata = wire.decode(body(tensors, Transport(encoding)))  # type: ignore[arg-type]
    arrays, metadata = dict(arrays), dict(metadata)
    mangle(arrays, metadata)
    data = wire.encode(arrays, metadata).tobytes()  # still a valid safetensors file
    with pytest.raises(ValueError, match=message.replace("(", r"\(")) as error:
        decoded(data)
    assert str(error.value), case


def test_a_corrupt_length_cannot_ask_for_huge_frames() -> None:
    frame = Zstd().encode(np.zeros(100, np.uint8))
    # a frame header that claims 2**40 bytes of content
    header = bytearray(frame[:4]) + bytes([0xE0]) + struct.pack("<Q", 2**40)
    with pytest.raises(ValueError, match="holds"):
        Zstd.inflate(memoryview(bytes(header) + frame[5:]), 100)


@pytest.mark.parametrize(
    ("encoding", "quality", "dtype", "layout", "name", "detail"),
    [
        ("raw", None, "float32", "nchw", None, None),
        ("jpeg", 1, "uint8", "nhwc", None, None),
        ("jpeg", 100, "uint8", None, None, None),
        ("webp", None, "uint8", None, "encoding", "must be one of raw, lossless, jpeg"),
        ("jpeg", 0, "uint8", None, "quality", "an integer 1-100 (default 95), got 0"),
        ("jpeg", 101, "uint8", None, "quality", "an integer 1-100"),
        ("jpeg", 9.5, "uint8", None, "quality", "an integer 1-100"),
        ("jpeg", True, "uint8", None, "quality", "an integer 1-100"),
        ("raw", 90, "uint8", None, "quality", "applies only to encoding=jpeg"),
        ("lossless", "float32", "float32", None, "quality", "an integer"),
        ("lossless", None, "float32", None, "dtype", "encoding=lossless carries uint8"),
        ("jpeg", None, "uint8", "nchw", "layout", "encoding=jpeg carries nhwc"),
    ],
)
def test_transport_rule(
    encoding: object,
    quality: object,
    dtype: str,
    layout: str | None,
    name: str | None,
    detail: str | None,
) -> None:
    problem = transport_problem(encoding, quality, dtype, layout)
    if name is None:
        assert problem is None
    else:
        assert problem is not None
        assert problem[0] == name
        assert detail is not None
        assert detail in problem[1]


def test_body_transport_defaults_to_raw() -> None:
    assert body_transport({}) == Transport()
    assert body_transport({"encoding": "jpeg", "quality": "7"}) == Transport("jpeg", 7)


def test_sub_filter_shrinks_smooth_images() -> None:
    image = np.clip(np.arange(64)[None, :, None] * 3 + np.zeros((48, 64, 3)), 0, 255)
    sample = image.astype(np.uint8)
    assert len(SubZstd().encode(sample)) < len(Zstd().encode(sample)) / 2


def test_offsets_json_is_canonical() -> None:
    """The header stays canonical (sorted keys) with the encoded tensors and metadata."""
    data = body(batch_tensors(np.random.default_rng(6), 2, 8, 8), Transport("jpeg"))
    (length,) = struct.unpack("<Q", data[:8])
    header = data[8 : 8 + length].decode().rstrip()
    assert header == json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"))


def test_jpeg_frames_are_baseline_4_4_4_at_the_quality_asked() -> None:
    tensors = batch_tensors(np.random.default_rng(3), 2, 16, 24)
    arrays, _ = wire.decode(body(tensors, Transport("jpeg", 80)))
    frames, offsets = arrays["image.jpeg"], arrays["image.jpeg.offsets"]
    for i in range(2):
        frame = frames[offsets[i] : offsets[i + 1]].tobytes()
        height, width, colorspace, subsampling = simplejpeg.decode_jpeg_header(frame)
        assert (height, width, colorspace, subsampling) == (16, 24, "YCbCr", "444")
        assert frame[:2] == b"\xff\xd8"
        assert b"\xff\xc0" in frame  # SOF0: baseline
    lower = body(tensors, Transport("jpeg", 50))
    assert len(lower) < len(body(tensors, Transport("jpeg", 80)))
