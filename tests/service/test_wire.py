"""The wire format: canonical safetensors, zero-copy decoding, epoch-stream frames."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import safetensors.numpy
from hypothesis import given, settings
from hypothesis import strategies as st
from segserve_client.protocol.wire import (
    DTYPES,
    MAX_FRAME_BYTES,
    FrameReader,
    decode,
    encode,
    encoded_nbytes,
    etag,
    frame_prefix,
    iter_frames,
    iter_frames_into,
)

from service.batch import encode_batch, make_batch
from service.params import BatchSpec, CropSpec, Dtype
from tests.service.memsource import MemorySource

FAST = settings(max_examples=50, deadline=None)
ROOT = Path(__file__).resolve().parents[2]


@st.composite
def tensor_maps(draw: st.DrawFn) -> dict[str, npt.NDArray[Any]]:
    names = draw(st.lists(st.text(min_size=1, max_size=8), max_size=5, unique=True))
    result = {}
    for name in names:
        if name == "__metadata__":
            continue
        dtype = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        size = int(np.prod(shape)) * dtype.itemsize
        raw = draw(st.binary(min_size=size, max_size=size))
        result[name] = np.frombuffer(raw[:size], dtype=dtype).reshape(shape)
    return result


METADATA = st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4)


@FAST
@given(tensors=tensor_maps(), metadata=METADATA)
def test_round_trip_and_safetensors_reads_it(
    tensors: dict[str, npt.NDArray[Any]], metadata: dict[str, str]
) -> None:
    encoded = encode(tensors, metadata)
    body = encoded.tobytes()
    assert len(body) == encoded.nbytes
    assert (
        body == encode(dict(reversed(tensors.items())), dict(reversed(metadata.items()))).tobytes()
    )
    got, got_meta = decode(body)
    assert got_meta == metadata
    assert set(got) == set(tensors)
    for name, array in tensors.items():
        assert got[name].dtype == array.dtype.newbyteorder("<")
        np.testing.assert_array_equal(got[name], array)
        assert got[name].flags.aligned
    loaded = safetensors.numpy.load(body)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)


def test_header_is_canonical() -> None:
    encoded = encode(
        {"b": np.zeros(3, np.uint8), "a": np.ones((2,), np.int64)}, {"z": "1", "y": "2"}
    )
    (length,) = struct.unpack("<Q", encoded.header[:8])
    text = encoded.header[8:]
    assert len(text) == length
    assert len(encoded.header) % 8 == 0
    stripped = text.rstrip(b" ")
    header = json.loads(stripped)
    assert stripped == json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    assert header["__metadata__"] == {"y": "2", "z": "1"}
    # Larger items first, so every tensor is aligned: int64 a at 0, uint8 b after it.
    assert header["a"]["data_offsets"] == [0, 16]
    assert header["b"]["data_offsets"] == [16, 19]


def test_buffers_are_the_arrays_own_memory() -> None:
    image = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    encoded = encode({"image": image}, {})
    assert np.shares_memory(np.frombuffer(encoded.buffers[0], np.uint8), image)
    decoded, _ = decode(bytearray(encoded.tobytes()))
    view = decoded["image"]
    assert view.base is not None
    assert not view.flags.owndata


def test_non_contiguous_and_big_endian_inputs() -> None:
    array = np.arange(12, dtype=">i4").reshape(3, 4)[:, ::2]
    decoded, _ = decode(encode({"x": array}, {}).tobytes())
    assert decoded["x"].dtype == np.dtype("<i4")
    np.testing.assert_array_equal(decoded["x"], array)


@pytest.mark.parametrize(
    ("tensors", "metadata"),
    [
        ({"x": np.zeros(2, np.complex64)}, {}),
        ({"__metadata__": np.zeros(2)}, {}),
        ({"": np.zeros(2)}, {}),
        ({"x": np.zeros(2)}, {"k": 1}),
    ],
)
def test_encode_rejects(tensors: dict[str, npt.NDArray[Any]], metadata: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"dtype|tensor name|metadata"):
        encode(tensors, metadata)


def body(header: object, data: bytes = b"", length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


ENTRY = {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "too short"),
        (b"\x01\x00", "too short"),
        (body({}, length=1000), "exceeds"),
        (body(b"{not json"), "not valid JSON"),
        (body(b"\xff\xfe"), "not valid JSON"),
        (body(b"[" * 100_000), "not valid JSON"),
        (body([1, 2]), "not a JSON object"),
        (body({"__metadata__": {"a": 1}}), "__metadata__"),
        (body({"x": "U8"}, b"ab"), "exactly dtype, shape, data_offsets"),
        (body({"x": {**ENTRY, "dtype": "C64"}}, b"ab"), "unsupported dtype"),
        (body({"x": {**ENTRY, "shape": [-2]}}, b"ab"), "malformed"),
        (body({"x": {**ENTRY, "shape": [True]}}, b"ab"), "malformed"),
        (body({"x": {**ENTRY, "data_offsets": [0]}}, b"ab"), "malformed"),
        (body({"x": {**ENTRY, "data_offsets": [0, 3]}}, b"ab"), "outside"),
        (body({"x": {**ENTRY, "shape": [3]}}, b"ab"), "does not match"),
        (body({"x": ENTRY}, b"abc"), "trailing"),
        (body({"x": ENTRY, "y": ENTRY}, b"ab"), "starts at 0, expected 2"),
        (body({"x": {**ENTRY, "data_offsets": [1, 3]}, "y": ENTRY}, b"abc"), "expected"),
        (body(b'{"x":1,"x":2}'), "duplicate"),
    ],
)
def test_decode_rejects_malformed_input(raw: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decode(raw)


@FAST
@given(tensors=tensor_maps(), metadata=METADATA)
def test_encoded_nbytes_is_the_body_length_without_the_tensors(
    tensors: dict[str, npt.NDArray[Any]], metadata: dict[str, str]
) -> None:
    layout = {name: (array.dtype, array.shape) for name, array in tensors.items()}
    assert encoded_nbytes(layout, metadata) == len(encode(tensors, metadata).tobytes())


def test_encoded_nbytes_refuses_what_encode_refuses() -> None:
    with pytest.raises(ValueError, match="no safetensors equivalent"):
        encoded_nbytes({"x": (np.dtype(np.complex64), (2,))}, {})
    with pytest.raises(ValueError, match="invalid tensor name"):
        encoded_nbytes({"__metadata__": (np.dtype(np.uint8), (2,))}, {})
    with pytest.raises(ValueError, match="metadata must map str to str"):
        encoded_nbytes({"x": (np.dtype(np.uint8), (2,))}, {"k": 1})  # type: ignore[dict-item]


@FAST
@given(cut=st.integers(0, 400), flip=st.integers(0, 400), value=st.integers(0, 255))
def test_decode_fails_only_with_value_error(cut: int, flip: int, value: int) -> None:
    good = bytearray(
        encode({"a": np.arange(6, dtype=np.int32), "b": np.ones(5, np.uint8)}, {"k": "v"}).tobytes()
    )
    if flip < len(good):
        good[flip] = value
    with contextlib.suppress(ValueError):
        decode(bytes(good[:cut]))


def test_encode_batch(mem_source: MemorySource) -> None:
    batch = make_batch(mem_source, BatchSpec(CropSpec(10, 10), 3, seed=1, dtype="float32"), 0)
    encoded = encode_batch(batch)
    tensors, metadata = decode(encoded.tobytes())
    assert {k: (v.dtype.str, v.shape) for k, v in tensors.items()} == {
        "image": ("<f4", (3, 3, 10, 10)),
        "label": ("|u1", (3, 10, 10)),
        "index": ("<i8", (3,)),
        "rect": ("<i4", (3, 4)),
    }
    header = json.loads(encoded.header[8:])
    assert {header[k]["dtype"] for k in tensors} == {"F32", "U8", "I64", "I32"}
    assert metadata == batch.metadata
    for name in tensors:
        np.testing.assert_array_equal(tensors[name], getattr(batch, name))


def test_etag_follows_content() -> None:
    a = encode({"x": np.zeros(4, np.uint8)}, {"k": "v"})
    assert etag(a) == etag(encode({"x": np.zeros(4, np.uint8)}, {"k": "v"}))
    assert etag(a) != etag(encode({"x": np.ones(4, np.uint8)}, {"k": "v"}))
    assert etag(a) != etag(encode({"x": np.zeros(4, np.uint8)}, {"k": "w"}))
    assert etag(a)[0] == etag(a)[-1] == '"'


def batch_digest(dtype: Dtype) -> str:
    """sha256 of an encoded batch that uses every augmentation."""
    from tests.service.memsource import coded_source

    source = coded_source([(30, 38), (12, 40), (25, 33), (40, 40), (31, 29)], seed=5)
    crop = CropSpec(20, 24, small="pad", flip=True, scale=(0.5, 2.0))
    spec = BatchSpec(crop, 3, seed=2**62 + 7, epoch=4, drop_last=False, dtype=dtype)
    return hashlib.sha256(encode_batch(make_batch(source, spec, 1)).tobytes()).hexdigest()


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_batch_bytes_are_identical_in_other_processes(dtype: Dtype) -> None:
    script = f"from tests.service.test_wire import batch_digest; print(batch_digest({dtype!r}))"
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": hash_seed}
        run = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        digests.add(run.stdout.strip())
    assert digests == {batch_digest(dtype)}


FRAMES = st.lists(st.binary(max_size=40), max_size=6)


@FAST
@given(frames=FRAMES, cuts=st.lists(st.integers(1, 30), min_size=1, max_size=10))
def test_frames_round_trip(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame_prefix(len(f)) + f for f in frames)
    reader, got, position, step = FrameReader(), [], 0, 0
    while position < len(stream):
        size = cuts[step % len(cuts)]
        got += reader.feed(stream[position : position + size])
        position, step = position + size, step + 1
    reader.close()
    assert got == frames
    chunked = io.BytesIO(stream)
    assert list(iter_frames(lambda n: chunked.read(min(n, 7)))) == frames
    pieces = io.BytesIO(stream)
    into = iter_frames_into(lambda view: pieces.readinto(view[: cuts[0]]))
    assert [frame.tobytes() for frame in into] == frames


@pytest.mark.parametrize("cut", [1, 7, 9, 12])
def test_truncated_stream(cut: int) -> None:
    stream = frame_prefix(5) + b"hello"
    truncated = stream[: len(stream) - cut]
    with pytest.raises(ValueError, match="truncated"):
        list(iter_frames(io.BytesIO(truncated).read))
    with pytest.raises(ValueError, match="truncated"):
        list(iter_frames_into(io.BytesIO(truncated).readinto))
    reader = FrameReader()
    assert reader.feed(truncated) == []
    with pytest.raises(ValueError, match="truncated"):
        reader.close()


def test_frame_limit() -> None:
    stream = frame_prefix(100) + bytes(100)
    with pytest.raises(ValueError, match="exceeds the limit"):
        list(iter_frames(io.BytesIO(stream).read, max_frame=99))
    with pytest.raises(ValueError, match="exceeds the limit"):
        FrameReader(max_frame=99).feed(stream[:8])
    with pytest.raises(ValueError, match="exceeds the limit"):
        list(iter_frames_into(io.BytesIO(stream).readinto, max_frame=99))
    assert frame_prefix(2**40) == (2**40).to_bytes(8, "little")


def test_a_corrupt_length_is_refused_before_anything_is_allocated() -> None:
    """By default a length prefix above MAX_FRAME_BYTES (e.g. 2**64 - 1) is an error."""
    asked: list[int] = []

    def acquire(nbytes: int) -> npt.NDArray[np.uint8]:
        asked.append(nbytes)
        return np.empty(nbytes, np.uint8)

    for length in (MAX_FRAME_BYTES + 1, 2**64 - 1):
        stream = frame_prefix(length) + bytes(16)
        with pytest.raises(ValueError, match="exceeds the limit"):
            list(iter_frames_into(io.BytesIO(stream).readinto, acquire))
        with pytest.raises(ValueError, match="exceeds the limit"):
            list(iter_frames(io.BytesIO(stream).read))
        with pytest.raises(ValueError, match="exceeds the limit"):
            FrameReader().feed(stream)
    assert asked == []


def test_frames_land_in_the_acquired_buffers() -> None:
    stream = frame_prefix(3) + b"abc" + frame_prefix(0) + frame_prefix(2) + b"de"
    buffers: list[npt.NDArray[np.uint8]] = []

    def acquire(nbytes: int) -> npt.NDArray[np.uint8]:
        buffers.append(np.empty(nbytes, np.uint8))
        return buffers[-1]

    frames = list(iter_frames_into(io.BytesIO(stream).readinto, acquire))
    assert [f.tobytes() for f in frames] == [b"abc", b"", b"de"]
    assert all(f is b for f, b in zip(frames, buffers, strict=True))
