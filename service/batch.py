"""Batches and single crops: choose the samples, augment each, assemble the arrays.

A batch is a pure function of (split content, seed, epoch, batch number,
parameters); a crop is a batch of one. Arrays are preallocated once per batch
and every sample is written straight into its slot.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from segserve_client.protocol.encoding import encode_tensors
from segserve_client.protocol.normalize import NORM_OFFSET, NORM_SCALE, normalize_sample
from segserve_client.protocol.wire import Encoded, encode
from segserve_client.protocol.wire import encoded_nbytes as wire_nbytes

from service.augment import NUM_UNIFORMS, SAMPLE_UNIFORMS, plan_sample, write_crop
from service.errors import InvalidParameterError, NotFoundError
from service.params import BatchSpec, CropSpec, Dtype, Layout
from service.sampling import (
    I64Array,
    batch_indices,
    epoch_order,
    pick_index,
    sample_uniforms_many,
    usable_indices,
)
from service.source import SplitSource, U8Array
from service.transport import RAW, Transport
from service.voc import IGNORE_INDEX

I32Array = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Batch:
    """Crop pairs of ``N`` samples, in the tensor layout of the wire format.

    ``image``: uint8 or normalised float32, NHWC or NCHW; ``label``: uint8
    (N, H, W); ``index``: int64 (N,) sample indices; ``rect``: int32 (N, 4)
    top, left, height, width of each crop in the (rescaled) source;
    ``metadata``: split, seed, epoch, batch and every parameter, as strings.
    """

    image: npt.NDArray[Any]
    label: U8Array
    index: I64Array
    rect: I32Array
    metadata: dict[str, str]


TensorLayout = dict[str, tuple[np.dtype[Any], tuple[int, ...]]]


def tensor_layout(n: int, crop: CropSpec, dtype: Dtype, layout: Layout) -> TensorLayout:
    """Name -> (dtype, shape) of the tensors of a batch of ``n`` samples (see :class:`Batch`)."""
    h, w = crop.height, crop.width
    image = (n, h, w, 3) if layout == "nhwc" else (n, 3, h, w)
    return {
        "image": (np.dtype(dtype), image),
        "label": (np.dtype(np.uint8), (n, h, w)),
        "index": (np.dtype(np.int64), (n,)),
        "rect": (np.dtype(np.int32), (n, 4)),
    }


class _ImageOut:
    """The batch's image array and how each sample's (h, w, 3) uint8 crop lands in it."""

    def __init__(self, shapes: TensorLayout, dtype: Dtype, layout: Layout) -> None:
        image_dtype, shape = shapes["image"]
        height, width = shapes["label"][1][1:]
        self.array: npt.NDArray[Any] = np.empty(shape, dtype=image_dtype)
        self._direct = dtype == "uint8" and layout == "nhwc"
        self._scratch = None if self._direct else np.empty((height, width, 3), np.uint8)
        self._float = dtype == "float32"
        self._nhwc = layout == "nhwc"
        # NHWC float rows are normalised with per-element row vectors: numpy
        # broadcasts a length-3 vector over interleaved pixels far more slowly.
        self._row_scale = np.tile(NORM_SCALE, width)
        self._row_offset = np.tile(NORM_OFFSET, width)

    def slot(self, i: int) -> U8Array:
        """Where sample ``i``'s uint8 HWC crop is to be written."""
        return self.array[i] if self._scratch is None else self._scratch

    def finish(self, i: int) -> None:
        """Convert the crop in the scratch slot into sample ``i`` of the output."""
        src = self._scratch
        if src is None:
            return
        out = self.array[i]
        if not self._float:
            np.copyto(out, src.transpose(2, 0, 1))
        elif self._nhwc:
            rows, flat = src.reshape(src.shape[0], -1), out.reshape(out.shape[0], -1)
            np.multiply(rows, self._row_scale, out=flat, dtype=np.float32)
            np.add(flat, self._row_offset, out=flat)
        else:
            normalize_sample(src, out)


def assemble(
    source: SplitSource,
    crop: CropSpec,
    indices: I64Array,
    seed: int,
    epoch: int,
    dtype: Dtype,
    layout: Layout,
    metadata: dict[str, str],
) -> Batch:
    """Augment samples ``indices`` of ``source`` with (seed, epoch) and stack them."""
    indices = np.array(indices, dtype=np.int64)
    n = len(indices)
    recipe = crop.photometric or crop.cat_max_ratio < 1.0
    uniforms = sample_uniforms_many(
        seed, epoch, indices, SAMPLE_UNIFORMS if recipe else NUM_UNIFORMS
    )
    heights, widths = np.asarray(source.heights), np.asarray(source.widths)
    shapes = tensor_layout(n, crop, dtype, layout)
    images = _ImageOut(shapes, dtype, layout)
    label = np.empty(shapes["label"][1], dtype=shapes["label"][0])
    rect = np.empty(shapes["rect"][1], dtype=shapes["rect"][0])
    for i, sample in enumerate(indices.tolist()):
        stored_label = source.label(sample)
        size = int(heights[sample]), int(widths[sample])
        plan = plan_sample(*size, crop, uniforms[i], stored_label)
        write_crop(source.image(sample), stored_label, plan, images.slot(i), label[i])
        images.finish(i)
        rect[i] = plan.rect
        if crop.void == "background":
            np.putmask(label[i], label[i] == IGNORE_INDEX, 0)
    return Batch(images.array, label, indices, rect, metadata)


def make_batch(source: SplitSource, spec: BatchSpec, batch: int) -> Batch:
    """Batch number ``batch`` of epoch ``spec.epoch``; :class:`NotFoundError` when out of range."""
    usable = usable_indices(source, spec.crop)
    order = epoch_order(usable, spec.seed, spec.epoch, spec.shuffle)
    indices = batch_indices(order, spec.batch_size, batch, spec.drop_last)
    return _batch_of(source, spec, indices, batch)


def make_crop(source: SplitSource, spec: BatchSpec, index: int | None = None) -> Batch:
    """One crop pair: a batch of one of ``spec``, of sample ``index``, else one the seed picks.

    The crop of sample ``i`` equals that sample's crop in any batch of the same
    (seed, epoch, crop parameters); ``spec``'s ordering fields play no part.
    """
    spec = replace(spec, batch_size=1)
    if index is None:
        index = pick_index(usable_indices(source, spec.crop), spec.seed, spec.epoch)
    else:
        _check_index(source, spec.crop, index)
    return _batch_of(source, spec, np.array([index], dtype=np.int64), 0, index=str(index))


def _batch_of(
    source: SplitSource, spec: BatchSpec, indices: I64Array, batch: int, **extra: str
) -> Batch:
    """Samples ``indices`` as batch number ``batch`` of ``spec``, its metadata from ``spec``."""
    metadata = _metadata(source, spec, batch, **extra)
    layout = spec.resolved_layout
    return assemble(source, spec.crop, indices, spec.seed, spec.epoch, spec.dtype, layout, metadata)


def _metadata(source: SplitSource, spec: BatchSpec, batch: int, **extra: str) -> dict[str, str]:
    return {"split": source.name, **spec.describe(), "batch": str(batch), **extra}


def raw_batch_nbytes(source: SplitSource, spec: BatchSpec, batch: int) -> int:
    """The length of batch ``batch``'s raw body (``encode_batch(make_batch(...))``), without
    building it: its shapes and metadata do not depend on the pixels.
    :class:`NotFoundError` when out of range."""
    usable = usable_indices(source, spec.crop)
    n = len(batch_indices(usable, spec.batch_size, batch, spec.drop_last))
    shapes = tensor_layout(n, spec.crop, spec.dtype, spec.resolved_layout)
    return wire_nbytes(shapes, {**_metadata(source, spec, batch), **RAW.describe()})


def _check_index(source: SplitSource, crop: CropSpec, index: int) -> None:
    """Raise unless sample ``index`` exists and (under ``small=drop``) is large enough."""
    size = len(source.heights)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise NotFoundError(
            f"sample index {index!r} out of range: split {source.name!r} has {size} samples"
            + (f" (0..{size - 1})" if size else "")
        )
    height, width = int(source.heights[index]), int(source.widths[index])
    if crop.crop_mode == "full":
        if height > crop.height or width > crop.width:
            raise InvalidParameterError(
                "index",
                f"sample {index} is {height} x {width}, larger than the canvas "
                f"{crop.height} x {crop.width} of crop_mode=full; choose a larger canvas",
            )
    elif crop.small == "drop" and (height < crop.height or width < crop.width):
        raise InvalidParameterError(
            "index",
            f"sample {index} is {height} x {width}, smaller than the crop "
            f"{crop.height} x {crop.width}; choose a sample at least that large or use small=pad",
        )


def encode_batch(batch: Batch, transport: Transport = RAW) -> Encoded:
    """A :class:`Batch` as safetensors: ``image``, ``label``, ``index``, ``rect``.

    Under an encoding other than ``raw``, ``image`` and ``label`` travel as
    per-sample frames (see :mod:`segserve_client.protocol.encoding`).
    """
    tensors = {
        "image": batch.image,
        "label": batch.label,
        "index": batch.index,
        "rect": batch.rect,
    }
    encoded, metadata = encode_tensors(tensors, transport)
    return encode(encoded, {**batch.metadata, **metadata})
