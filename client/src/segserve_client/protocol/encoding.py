"""Transport encodings of a batch body: ``raw``, ``lossless`` and ``jpeg``.

An encoded body is still one safetensors file; only ``image`` and ``label``
change form. Each becomes two tensors, one frame per sample::

    <name>.<codec>          U8  (total,)  the N frames, one after the other
    <name>.<codec>.offsets  I64 (N + 1,)  frame i is bytes offsets[i]:offsets[i+1]

and the metadata gains ``encoding``, ``quality`` (``jpeg`` only) and
``<name>.shape`` (the decoded tensor's shape, e.g. ``64,320,480,3``). The
codecs (:data:`CODECS`):

- ``zstd``: the sample's bytes as one zstd frame (level 1, content size and
  checksum in the frame header).
- ``subzstd``: the uint8 (H, W, C) image through PNG's Sub filter (each byte
  minus its left neighbour of the same channel, modulo 256; the first column
  kept), then one zstd frame as above.
- ``jpeg``: baseline JFIF, RGB, 4:4:4 (no chroma subsampling,
  :data:`JPEG_SUBSAMPLING`), accurate DCT, at ``quality``; a decoder reads the
  subsampling from each frame's header (bodies of the earlier 4:2:0 format
  decode too, with libjpeg-turbo's smooth upsampling).

``lossless`` carries the image as ``subzstd`` and the label as ``zstd``;
``jpeg`` the image as ``jpeg`` and the label as ``zstd``. ``index`` and
``rect`` stay as they are. Every encoder setting is pinned, so a body is a
pure function of its arrays (and the codec libraries' versions,
:func:`codec_versions`).

Choices measured on crops of natural photographs (see the README's design
notes): the Sub filter raises zstd's ratio on images from 1.09x to 1.36x for a
tenth of zstd's time (a 2-D gradient filter did worse on grainy photographs
and costs a second, slower pass to undo); every codec call releases the GIL,
so threads scale.

Decoding checks every frame against the declared shape before writing it into
the caller's buffer: a malformed body raises ValueError naming the tensor,
never a wrong array. This module is part of the leaf protocol package: numpy,
the standard library and the codec packages (``zstandard``, ``simplejpeg``) only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, get_args

import numpy as np
import numpy.typing as npt
import simplejpeg
import zstandard

U8Array = npt.NDArray[np.uint8]
Encoding = Literal["raw", "lossless", "jpeg"]
ENCODINGS: Final[tuple[Encoding, ...]] = get_args(Encoding)
MIN_QUALITY: Final = 1
MAX_QUALITY: Final = 100
DEFAULT_QUALITY: Final = 95
ZSTD_LEVEL: Final = 1
# Chroma subsampling of the JPEG frames: none. On 256 crops of the natural set cut at
# random offsets, as the server cuts them, 4:2:0 at quality 95 gave 37.8 dB minimum
# and 39.7 mean PSNR, below the 40 dB the API promises; 4:4:4 gave 40.0 / 41.0 for
# 17 % more bytes and 1.4x the encoding time (bench.codecs; README design notes).
JPEG_SUBSAMPLING: Final[str] = "444"
# A body may not declare more decoded bytes than this (a few bytes of zstd can
# claim gigabytes): well above the largest batch a server sends.
MAX_DECODED_BYTES: Final = 1 << 32
OFFSETS_SUFFIX: Final = ".offsets"
SHAPE_SUFFIX: Final = ".shape"

Allocate = Callable[[str, tuple[int, ...]], U8Array]
Mapper = Callable[[Callable[[int], None], Iterable[int]], Iterable[None]]


class Codec(Protocol):
    """One sample's array to bytes and back; ``decode`` writes into ``out``."""

    name: str
    sample_ndim: int

    def encode(self, sample: U8Array) -> bytes: ...

    def decode(self, frame: memoryview, out: U8Array) -> None: ...


class Zstd:
    """A sample's bytes as one zstd frame with its content size and a checksum."""

    name = "zstd"
    sample_ndim = 0  # any shape

    def encode(self, sample: U8Array) -> bytes:
        # A compressor object is not thread-safe: one per call (creating one is cheap).
        compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, write_checksum=True, write_content_size=True
        )
        return compressor.compress(np.ascontiguousarray(sample).data)

    def decode(self, frame: memoryview, out: U8Array) -> None:
        np.copyto(out.reshape(-1), np.frombuffer(self.inflate(frame, out.nbytes), np.uint8))

    @staticmethod
    def inflate(frame: memoryview, nbytes: int) -> bytes:
        """The frame's content, which must be exactly ``nbytes`` long."""
        try:
            declared = zstandard.frame_content_size(frame)
        except zstandard.ZstdError as error:
            raise ValueError(f"not a zstd frame ({error})") from None
        if declared != nbytes:
            raise ValueError(f"zstd frame holds {declared} bytes, expected {nbytes}")
        try:
            content = zstandard.ZstdDecompressor().decompress(frame, max_output_size=nbytes)
        except zstandard.ZstdError as error:
            raise ValueError(f"corrupt zstd frame ({error})") from None
        if len(content) != nbytes:
            raise ValueError(f"zstd frame gave {len(content)} bytes, expected {nbytes}")
        return content


class SubZstd:
    """A uint8 (H, W, C) image through PNG's Sub filter, then zstd."""

    name = "subzstd"
    sample_ndim = 3

    def encode(self, sample: U8Array) -> bytes:
        filtered = np.empty_like(sample)
        filtered[:, 0] = sample[:, 0]
        np.subtract(sample[:, 1:], sample[:, :-1], out=filtered[:, 1:])
        return Zstd().encode(filtered)

    def decode(self, frame: memoryview, out: U8Array) -> None:
        filtered = np.frombuffer(Zstd.inflate(frame, out.nbytes), np.uint8).reshape(out.shape)
        # uint8 sums wrap modulo 256, undoing the filter's modular differences.
        np.cumsum(filtered, axis=1, dtype=np.uint8, out=out)


class Jpeg:
    """A uint8 (H, W, 3) RGB image as a baseline JPEG at ``quality``, accurate DCT.

    ``subsampling`` is the chroma subsampling (:data:`JPEG_SUBSAMPLING` on the
    wire; others only to measure them).
    """

    name = "jpeg"
    sample_ndim = 3

    def __init__(self, quality: int = DEFAULT_QUALITY, subsampling: str = JPEG_SUBSAMPLING) -> None:
        self.quality = quality
        self.subsampling = subsampling

    def encode(self, sample: U8Array) -> bytes:
        return simplejpeg.encode_jpeg(  # type: ignore[no-any-return]
            np.ascontiguousarray(sample),
            quality=self.quality,
            colorspace="RGB",
            colorsubsampling=self.subsampling,
            fastdct=False,
        )

    def decode(self, frame: memoryview, out: U8Array) -> None:
        if out.ndim != 3 or out.shape[2] != 3:
            raise ValueError(f"jpeg decodes to (H, W, 3) samples, not {out.shape}")
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(frame)
            if (height, width) != out.shape[:2]:
                expected = f"{out.shape[0]} x {out.shape[1]}"
                raise ValueError(f"JPEG is {height} x {width}, expected {expected}")
            simplejpeg.decode_jpeg(
                frame, colorspace="RGB", fastdct=False, fastupsample=False, buffer=out, strict=True
            )
        except ValueError as error:
            raise ValueError(f"bad JPEG ({error})") from None


CODECS: Final[dict[str, Callable[[int], Codec]]] = {
    "zstd": lambda quality: Zstd(),
    "subzstd": lambda quality: SubZstd(),
    "jpeg": lambda quality: Jpeg(quality),
}
# Which codec carries which tensor, per encoding (tensors not named travel as they are).
PLANS: Final[dict[Encoding, dict[str, str]]] = {
    "raw": {},
    "lossless": {"image": "subzstd", "label": "zstd"},
    "jpeg": {"image": "jpeg", "label": "zstd"},
}


@dataclass(frozen=True)
class Transport:
    """How a body's tensors travel: ``encoding``, and ``quality`` (``jpeg`` only).

    ``quality=None`` means :data:`DEFAULT_QUALITY` under ``jpeg``. Construction
    does not check; :func:`transport_problem` says what is wrong, if anything.
    """

    encoding: Encoding = "raw"
    quality: int | None = None

    @property
    def resolved_quality(self) -> int:
        """The JPEG quality in force (the default when none was given)."""
        return DEFAULT_QUALITY if self.quality is None else self.quality

    def describe(self) -> dict[str, str]:
        """What the body's metadata records (nothing for ``raw``, whose bodies are unchanged)."""
        if self.encoding == "raw":
            return {}
        if self.encoding == "jpeg":
            return {"encoding": "jpeg", "quality": str(self.resolved_quality)}
        return {"encoding": self.encoding}

    def codecs(self) -> dict[str, Codec]:
        """Tensor name -> codec for this transport."""
        plan = PLANS[self.encoding]
        return {name: CODECS[codec](self.resolved_quality) for name, codec in plan.items()}


def transport_problem(
    encoding: object, quality: object, dtype: str = "uint8", layout: str | None = None
) -> tuple[str, str] | None:
    """The parameter at fault and why, or None when the combination is served.

    One rule for server (422) and client (before sending): ``encoding`` one of
    :data:`ENCODINGS`; ``quality`` an integer in 1-100, given only with
    ``jpeg``; encodings other than ``raw`` carry uint8 NHWC images only.
    """
    if encoding not in ENCODINGS:
        return "encoding", f"must be one of {', '.join(ENCODINGS)}; got {encoding!r}"
    ranged = f"an integer {MIN_QUALITY}-{MAX_QUALITY} (default {DEFAULT_QUALITY})"
    if quality is not None:
        if isinstance(quality, bool) or not isinstance(quality, int):
            return "quality", f"must be {ranged}, got {quality!r}"
        if not MIN_QUALITY <= quality <= MAX_QUALITY:
            return "quality", f"must be {ranged}, got {quality}"
        if encoding != "jpeg":
            return "quality", f"applies only to encoding=jpeg (got encoding={encoding})"
    if encoding != "raw" and dtype != "uint8":
        return "dtype", (
            f"encoding={encoding} carries uint8 images only (got dtype={dtype}); "
            "use dtype=uint8 and normalise after decoding, or encoding=raw"
        )
    if encoding != "raw" and layout not in (None, "nhwc"):
        return "layout", (
            f"encoding={encoding} carries nhwc images only (got layout={layout}); "
            "use layout=nhwc or encoding=raw"
        )
    return None


def codec_versions() -> str:
    """The codec libraries' versions and settings: part of every encoded body's entity tag."""
    libzstd = ".".join(map(str, zstandard.ZSTD_VERSION))
    jpeg = f"simplejpeg {simplejpeg.__version__} ({':'.join(JPEG_SUBSAMPLING)})"
    return f"zstandard {zstandard.__version__} (libzstd {libzstd}); {jpeg}"


def encode_tensors(
    tensors: Mapping[str, npt.NDArray[Any]],
    transport: Transport,
    mapper: Callable[..., Iterable[bytes]] = map,
    codecs: Mapping[str, Codec] | None = None,
) -> tuple[dict[str, npt.NDArray[Any]], dict[str, str]]:
    """The tensors and metadata entries of an encoded body.

    Each planned tensor (uint8, first axis = samples) becomes its frames and
    offsets; ``mapper`` (``map``, or an executor's ``map``) runs the per-sample
    encoder, so a thread pool can spread one batch over several cores.
    ``codecs`` replaces the transport's codecs (same names; e.g. a JPEG codec
    with other settings, to measure them); the server never passes it.
    """
    out: dict[str, npt.NDArray[Any]] = {}
    metadata = transport.describe()
    if codecs is None:
        codecs = transport.codecs()
    elif {name: codec.name for name, codec in codecs.items()} != PLANS[transport.encoding]:
        raise ValueError(f"codecs {sorted(codecs)} do not match encoding={transport.encoding}")
    for name, tensor in tensors.items():
        codec = codecs.get(name)
        if codec is None:
            out[name] = tensor
            continue
        if tensor.dtype != np.uint8 or tensor.ndim < 1:
            raise ValueError(f"tensor {name!r}: {codec.name} encodes uint8, not {tensor.dtype}")
        frames = list(mapper(codec.encode, list(tensor)))
        offsets = np.zeros(len(frames) + 1, dtype=np.int64)
        np.cumsum([len(frame) for frame in frames], out=offsets[1:])
        key = f"{name}.{codec.name}"
        out[key] = np.frombuffer(b"".join(frames), dtype=np.uint8)
        out[key + OFFSETS_SUFFIX] = offsets
        metadata[name + SHAPE_SUFFIX] = ",".join(map(str, tensor.shape))
    return out, metadata


def body_transport(metadata: Mapping[str, str]) -> Transport:
    """The transport a decoded body's metadata declares (ValueError when it is not one)."""
    encoding = metadata.get("encoding", "raw")
    text = metadata.get("quality")
    quality: object = None
    if text is not None:
        quality = int(text) if text.isdigit() and len(text) <= 3 else text
    problem = transport_problem(encoding, quality)
    if problem is not None:
        raise ValueError(f"metadata {problem[0]!r} {problem[1]}")
    return Transport(encoding, quality)  # type: ignore[arg-type]


def _empty(name: str, shape: tuple[int, ...]) -> U8Array:
    return np.empty(shape, dtype=np.uint8)


def decode_tensors(
    tensors: Mapping[str, npt.NDArray[Any]],
    metadata: Mapping[str, str],
    allocate: Allocate = _empty,
    mapper: Mapper = map,
) -> dict[str, npt.NDArray[Any]]:
    """The tensors of the ``raw`` body that ``tensors``/``metadata`` encode.

    Encoded tensors are decoded into arrays from ``allocate(name, shape)``
    (uint8, C-contiguous; e.g. reused buffers); ``mapper`` runs the per-sample
    decoder. Other tensors are passed through. Raises ValueError naming the
    tensor on any malformed body.
    """
    transport = body_transport(metadata)
    out = dict(tensors)
    for name, codec in transport.codecs().items():
        key = f"{name}.{codec.name}"
        frames, offsets = _frames(tensors, key)
        shape = _declared_shape(metadata, name, len(offsets) - 1, codec.sample_ndim)
        target = allocate(name, shape)
        if target.shape != shape or target.dtype != np.uint8 or not target.flags.c_contiguous:
            raise ValueError(f"tensor {key!r}: allocate gave {target.shape} {target.dtype}")
        _decode_frames(key, codec, memoryview(frames.data).cast("B"), offsets, target, mapper)
        del out[key], out[key + OFFSETS_SUFFIX]
        out[name] = target
    return out


def _decode_frames(
    key: str, codec: Codec, view: memoryview, offsets: list[int], target: U8Array, mapper: Mapper
) -> None:
    """Decode frame ``i`` of ``view`` into ``target[i]`` for every sample."""

    def one(i: int) -> None:
        try:
            codec.decode(view[offsets[i] : offsets[i + 1]], target[i])
        except ValueError as error:
            raise ValueError(f"tensor {key!r}: sample {i}: {error}") from None

    for _ in mapper(one, range(len(offsets) - 1)):
        pass


def _frames(tensors: Mapping[str, npt.NDArray[Any]], key: str) -> tuple[U8Array, list[int]]:
    """The frames tensor ``key`` and its checked offsets."""
    frames, offsets = tensors.get(key), tensors.get(key + OFFSETS_SUFFIX)
    if frames is None or offsets is None:
        raise ValueError(f"tensor {key!r}: missing (with its {OFFSETS_SUFFIX} tensor)")
    if frames.dtype != np.uint8 or frames.ndim != 1:
        raise ValueError(f"tensor {key!r}: must be U8 of one dimension, got {frames.dtype}")
    if offsets.dtype != np.int64 or offsets.ndim != 1 or len(offsets) < 1:
        raise ValueError(f"tensor {key + OFFSETS_SUFFIX!r}: must be I64 (N + 1,)")
    bounds = offsets.tolist()
    if bounds[0] != 0 or bounds[-1] != len(frames) or any(np.diff(offsets) < 0):
        raise ValueError(
            f"tensor {key + OFFSETS_SUFFIX!r}: must rise from 0 to {len(frames)}, "
            f"got {bounds[:4]}{'...' if len(bounds) > 4 else ''}"
        )
    return frames, bounds


def _declared_shape(metadata: Mapping[str, str], name: str, n: int, ndim: int) -> tuple[int, ...]:
    """The decoded shape of tensor ``name`` from the metadata, checked against ``n`` frames."""
    text = metadata.get(name + SHAPE_SUFFIX, "")
    parts = text.split(",")
    if not all(part.isdigit() and len(part) <= 12 for part in parts):
        raise ValueError(f"metadata {name + SHAPE_SUFFIX!r}: not a shape: {text!r}")
    shape = tuple(int(part) for part in parts)
    if shape[0] != n or (ndim and len(shape) != ndim + 1):
        raise ValueError(
            f"metadata {name + SHAPE_SUFFIX!r}: {text!r} does not fit {n} frames "
            f"of {ndim or 'any'}-dimensional samples"
        )
    if math.prod(shape) > MAX_DECODED_BYTES:
        raise ValueError(
            f"metadata {name + SHAPE_SUFFIX!r}: {text!r} exceeds {MAX_DECODED_BYTES} bytes"
        )
    return shape
