"""The wire format shared by server and client: safetensors, canonical and unjoined.

A safetensors file is an 8-byte little-endian header length, a JSON header
(tensor name -> dtype, shape, data offsets; ``__metadata__`` -> string map),
padded with spaces to a multiple of 8 bytes, then the raw little-endian
tensor bytes. The header here is canonical (sorted keys, compact separators)
so equal inputs give byte-identical output, and the tensors' own buffers are
handed out without joining them. Tensors are laid out by decreasing item size,
then name, so every tensor is aligned for a zero-copy ``np.frombuffer``.

An epoch stream is a sequence of frames: an 8-byte little-endian unsigned
length, then that many bytes of one safetensors batch.

Only the standard library and numpy are used: this is the client's protocol
module, and the server imports it from here.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

METADATA_KEY: Final = "__metadata__"
MAX_HEADER_BYTES: Final = 100_000_000
# The largest epoch-stream frame a reader accepts: far above any batch a server
# assembles (its max_batch_bytes defaults to 512 MiB), far below what a corrupt
# 8-byte length prefix could ask for (2**64 bytes).
MAX_FRAME_BYTES: Final = 1 << 32
_LENGTH = struct.Struct("<Q")
FRAME_PREFIX_BYTES: Final = _LENGTH.size  # each epoch-stream frame's length prefix

DTYPES: Final[dict[str, np.dtype[Any]]] = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_CODES: Final = {dtype: code for code, dtype in DTYPES.items()}


@dataclass(frozen=True)
class Encoded:
    """An encoded safetensors body: the header, then each tensor's buffer in order."""

    header: bytes
    buffers: list[memoryview]
    nbytes: int

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The body piece by piece (header, then buffers), for a streaming response."""
        yield self.header
        yield from self.buffers

    def tobytes(self) -> bytes:
        """The body as one bytes object (a copy)."""
        return b"".join(self.chunks())


def _code(name: str, dtype: np.dtype[Any]) -> str:
    code = _CODES.get(np.dtype(dtype).newbyteorder("<"))
    if code is None:
        raise ValueError(f"tensor {name!r}: dtype {dtype} has no safetensors equivalent")
    return code


def encode(tensors: Mapping[str, npt.NDArray[Any]], metadata: Mapping[str, str]) -> Encoded:
    """Encode ``tensors`` and string ``metadata`` as a canonical safetensors body."""
    _check_metadata(metadata)
    arrays: dict[str, npt.NDArray[Any]] = {}
    for name, tensor in tensors.items():
        _check_name(name)
        array = np.asarray(tensor)
        arrays[name] = np.ascontiguousarray(array, dtype=DTYPES[_code(name, array.dtype)])
    layout = {name: (array.dtype, array.shape) for name, array in arrays.items()}
    header, names, nbytes = _header(layout, metadata)
    buffers = [memoryview(arrays[name].reshape(-1).view(np.uint8).data) for name in names]
    return Encoded(header, buffers, nbytes)


def encoded_nbytes(
    layout: Mapping[str, tuple[np.dtype[Any], tuple[int, ...]]], metadata: Mapping[str, str]
) -> int:
    """The length of :func:`encode`'s body for tensors of these (dtype, shape), without them.

    The same header is built as :func:`encode` builds, so the two cannot disagree.
    """
    _check_metadata(metadata)
    for name, (dtype, _shape) in layout.items():
        _check_name(name)
        _code(name, dtype)
    return _header(layout, metadata)[2]


def _check_metadata(metadata: Mapping[str, str]) -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"metadata must map str to str, got {key!r}: {value!r}")


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or name == METADATA_KEY:
        raise ValueError(f"invalid tensor name {name!r}")


def _header(
    layout: Mapping[str, tuple[np.dtype[Any], tuple[int, ...]]], metadata: Mapping[str, str]
) -> tuple[bytes, list[str], int]:
    """The length-prefixed header, the tensor names in body order, and the body's length.

    Tensors are laid out by decreasing item size, then name.
    """
    names = sorted(layout, key=lambda name: (-np.dtype(layout[name][0]).itemsize, name))
    entries: dict[str, Any] = {METADATA_KEY: dict(metadata)} if metadata else {}
    offset = 0
    for name in names:
        dtype, shape = layout[name]
        shape = tuple(shape) or (1,)  # as np.ascontiguousarray stores a 0-d array
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        entries[name] = {
            "dtype": _code(name, dtype),
            "shape": [int(size) for size in shape],
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    text = json.dumps(entries, sort_keys=True, separators=(",", ":")).encode("ascii")
    text += b" " * (-len(text) % 8)
    header = _LENGTH.pack(len(text)) + text
    return header, names, len(header) + offset


def etag(encoded: Encoded) -> str:
    """A strong HTTP entity tag: a quoted BLAKE2b digest of the whole body."""
    digest = hashlib.blake2b(digest_size=16)
    for chunk in encoded.chunks():
        digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("safetensors header: duplicate key")
    return result


def _read_header(view: memoryview) -> tuple[dict[str, Any], int]:
    """The parsed JSON header and where the data starts."""
    if len(view) < 8:
        raise ValueError(f"safetensors: {len(view)} bytes, too short for the header length")
    (length,) = _LENGTH.unpack(view[:8])
    if length > min(MAX_HEADER_BYTES, len(view) - 8):
        raise ValueError(f"safetensors: header length {length} exceeds the {len(view)}-byte body")
    try:
        header = json.loads(bytes(view[8 : 8 + length]), object_pairs_hook=_reject_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"safetensors: header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise ValueError("safetensors: header is not a JSON object")
    return header, 8 + length


def _read_metadata(header: dict[str, Any]) -> dict[str, str]:
    metadata = header.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("safetensors: __metadata__ must map strings to strings")
    return metadata


def _read_entry(name: str, entry: object, size: int) -> tuple[np.dtype[Any], list[int], int, int]:
    """Validate one tensor entry: its dtype, shape and data offsets."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ValueError(f"safetensors: tensor {name!r} needs exactly dtype, shape, data_offsets")
    dtype = DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    shape, offsets = entry["shape"], entry["data_offsets"]
    if dtype is None:
        raise ValueError(f"safetensors: tensor {name!r} has unsupported dtype {entry['dtype']!r}")
    if not _ints(shape) or not _ints(offsets) or len(offsets) != 2:
        raise ValueError(f"safetensors: tensor {name!r} has a malformed shape or data_offsets")
    begin, end = offsets
    if not begin <= end <= size:
        raise ValueError(f"safetensors: tensor {name!r} offsets {offsets} outside {size} bytes")
    if end - begin != math.prod(shape) * dtype.itemsize:
        raise ValueError(f"safetensors: tensor {name!r} shape {shape} does not match its bytes")
    return dtype, shape, begin, end


def _ints(values: object) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values
    )


def decode(
    buffer: bytes | bytearray | memoryview,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, str]]:
    """Parse a safetensors body into arrays that view ``buffer`` (no copy) and the metadata.

    Raises ValueError, saying what is wrong, on any malformed input.
    """
    view = memoryview(buffer).cast("B")
    header, start = _read_header(view)
    metadata = _read_metadata(header)
    data = view[start:]
    entries = {name: _read_entry(name, entry, len(data)) for name, entry in header.items()}
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            raise ValueError(f"safetensors: tensor {name!r} starts at {begin}, expected {position}")
        position = end
    if position != len(data):
        raise ValueError(f"safetensors: {len(data) - position} trailing bytes after the tensors")
    tensors = {
        name: np.frombuffer(data, dtype, math.prod(shape), begin).reshape(shape)
        for name, (dtype, shape, begin, _) in entries.items()
    }
    return tensors, metadata


def frame_prefix(nbytes: int) -> bytes:
    """The 8-byte little-endian length that precedes a frame of ``nbytes`` bytes."""
    return _LENGTH.pack(nbytes)


class FrameReader:
    """Splits an epoch stream fed in arbitrary pieces into whole frames.

    ``feed`` returns the frames completed by a piece; ``close`` raises
    ValueError when the stream ended inside a frame.
    """

    def __init__(self, max_frame: int = MAX_FRAME_BYTES) -> None:
        self._pending = bytearray()
        self._max_frame = max_frame

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytearray]:
        """Append ``data``; return every frame it completes, in order."""
        self._pending += data
        frames: list[bytearray] = []
        while len(self._pending) >= 8:
            (length,) = _LENGTH.unpack_from(self._pending)
            self._check(length)
            if len(self._pending) < 8 + length:
                break
            frames.append(self._pending[8 : 8 + length])
            del self._pending[: 8 + length]
        return frames

    def close(self) -> None:
        """Raise ValueError unless the stream ended on a frame boundary."""
        if self._pending:
            raise ValueError(f"stream truncated: {len(self._pending)} bytes of an incomplete frame")

    def _check(self, length: int) -> None:
        _check_frame(length, self._max_frame)


def _check_frame(length: int, max_frame: int) -> None:
    """ValueError when a frame's declared ``length`` is above ``max_frame``."""
    if length > max_frame:
        raise ValueError(f"frame of {length} bytes exceeds the limit of {max_frame}")


def _read_exactly(read: Callable[[int], bytes], size: int, what: str) -> bytearray | None:
    """``size`` bytes from ``read``; None at a clean end of stream, ValueError inside one."""
    out = bytearray()
    while len(out) < size:
        piece = read(size - len(out))
        if not piece:
            if not out and what == "length":
                return None
            raise ValueError(f"stream truncated: {len(out)} of {size} bytes of a frame {what}")
        out += piece
    return out


def iter_frames(
    read: Callable[[int], bytes], max_frame: int = MAX_FRAME_BYTES
) -> Iterator[bytearray]:
    """Yield the frames of an epoch stream read through ``read(n)`` (a file's ``read``)."""
    while True:
        prefix = _read_exactly(read, 8, "length")
        if prefix is None:
            return
        (length,) = _LENGTH.unpack(prefix)
        _check_frame(length, max_frame)
        body = _read_exactly(read, length, "body")
        yield bytearray() if body is None else body


def _new_buffer(nbytes: int) -> npt.NDArray[np.uint8]:
    return np.empty(nbytes, dtype=np.uint8)


def iter_frames_into(
    readinto: Callable[[memoryview], int | None],
    acquire: Callable[[int], npt.NDArray[np.uint8]] = _new_buffer,
    max_frame: int = MAX_FRAME_BYTES,
) -> Iterator[npt.NDArray[np.uint8]]:
    """Yield the frames of an epoch stream, each read in place into ``acquire(length)``.

    ``readinto`` is a file's (``HTTPResponse.readinto`` undoes the chunked
    framing straight into the buffer), so each frame's bytes are copied once,
    from the socket into a (reusable) buffer. ValueError on a length above
    ``max_frame`` or a stream that ends inside a frame.
    """
    prefix = memoryview(bytearray(8))
    while True:
        got = _fill(readinto, prefix)
        if got == 0:
            return
        if got < 8:
            raise ValueError(f"stream truncated: {got} of 8 bytes of a frame length")
        (length,) = _LENGTH.unpack(prefix)
        _check_frame(length, max_frame)
        buffer = acquire(length)
        got = _fill(readinto, memoryview(buffer.data).cast("B"))
        if got < length:
            raise ValueError(f"stream truncated: {got} of {length} bytes of a frame body")
        yield buffer


def _fill(readinto: Callable[[memoryview], int | None], view: memoryview) -> int:
    """Read into ``view`` until it is full or the stream ends; how many bytes came."""
    got = 0
    while got < len(view):
        n = readinto(view[got:])
        if not n:
            break
        got += n
    return got
