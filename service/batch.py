"""Batches and single crops: choose the samples, augment each, assemble the arrays.

A batch is a pure function of (split content, seed, epoch, batch number,
parameters); a crop is a batch of one. Arrays are preallocated once per batch
and every sample is written straight into its slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from segserve_client.protocol.encoding import encode_tensors
from segserve_client.protocol.normalize import NORM_OFFSET, NORM_SCALE, normalize_sample
from segserve_client.protocol.wire import Encoded, encode

from service.augment import NUM_UNIFORMS, SAMPLE_UNIFORMS, plan_sample, write_crop
from service.errors import InvalidParameterError, NotFoundError
from service.params import BatchSpec, CropSpec, Dtype, Layout, check_seed, resolve_layout
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


class _ImageOut:
    """The batch's image array and how each sample's (h, w, 3) uint8 crop lands in it."""

    def __init__(self, n: int, height: int, width: int, dtype: Dtype, layout: Layout) -> None:
        shape = (n, height, width, 3) if layout == "nhwc" else (n, 3, height, width)
        self.array: npt.NDArray[Any] = np.empty(shape, dtype=np.dtype(dtype))
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
    n, h, w = len(indices), crop.height, crop.width
    recipe = crop.photometric or crop.cat_max_ratio < 1.0
    uniforms = sample_uniforms_many(
        seed, epoch, indices, SAMPLE_UNIFORMS if recipe else NUM_UNIFORMS
    )
    heights, widths = np.asarray(source.heights), np.asarray(source.widths)
    images = _ImageOut(n, h, w, dtype, layout)
    label = np.empty((n, h, w), dtype=np.uint8)
    rect = np.empty((n, 4), dtype=np.int32)
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
    metadata = {"split": source.name, **spec.describe(), "batch": str(batch)}
    layout = spec.resolved_layout
    return assemble(source, spec.crop, indices, spec.seed, spec.epoch, spec.dtype, layout, metadata)


def make_crop(
    source: SplitSource,
    crop: CropSpec,
    seed: int,
    epoch: int = 0,
    index: int | None = None,
    dtype: Dtype = "uint8",
    layout: Layout | None = None,
) -> Batch:
    """One crop pair as a batch of one: sample ``index``, else a usable one picked by the seed.

    The crop of sample ``i`` equals that sample's crop in any batch of the same
    (seed, epoch, crop parameters).
    """
    check_seed(seed)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise InvalidParameterError("epoch", f"must be an integer >= 0, got {epoch!r}")
    resolved = resolve_layout(dtype, layout)
    if index is None:
        index = pick_index(usable_indices(source, crop), seed, epoch)
    else:
        _check_index(source, crop, index)
    metadata = {
        "split": source.name,
        **crop.describe(),
        "seed": str(seed),
        "epoch": str(epoch),
        "batch": "0",
        "index": str(index),
        "dtype": dtype,
        "layout": resolved,
    }
    indices = np.array([index], dtype=np.int64)
    return assemble(source, crop, indices, seed, epoch, dtype, resolved, metadata)


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
