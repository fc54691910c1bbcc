"""Decoding one sample's files, and the checks that exclude a sample instead of failing.

A sample is excluded (with a reason naming the file) when a file is missing,
is not a picture, is corrupt or truncated, or when the label's size differs from
the image's. Truncated files are refused because Pillow's
``ImageFile.LOAD_TRUNCATED_IMAGES`` is left False and every picture is fully
``load()``-ed here.

`decode_into` is the unit of work of a cache build; it runs in a worker process
when the build is parallel, so it takes and returns only plain, picklable data
and writes the decoded bytes straight into the cache files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.labels import decode_label
from service.source import U8Array


class SampleRejectedError(Exception):
    """A sample cannot be served; the message says which file and why."""


@dataclass(frozen=True)
class DecodeJob:
    """One sample to decode and where its bytes go in the cache files."""

    name: str
    image_path: Path
    label_path: Path
    height: int
    width: int
    image_offset: int
    label_offset: int


def shown(path: Path) -> str:
    """How a reason names a file: ``JPEGImages/NAME.jpg``, relative to the data root."""
    return f"{path.parent.name}/{path.name}"


def _open_picture(path: Path) -> Image.Image:
    try:
        return Image.open(path)
    except FileNotFoundError:
        raise SampleRejectedError(f"{shown(path)}: missing file") from None
    except UnidentifiedImageError:
        raise SampleRejectedError(
            f"{shown(path)}: not a readable picture (corrupt file?)"
        ) from None
    # Reading the header can hit the end of a truncated file, or any of the
    # errors `_decode` lists; each only excludes this file.
    except Exception as error:
        raise SampleRejectedError(f"{shown(path)}: corrupt or truncated ({error})") from None


def probe_sample(image_path: Path, label_path: Path) -> tuple[int, int]:
    """``(height, width)`` from the files' headers, checking both exist and agree in size."""
    with _open_picture(image_path) as image:
        image_size = image.size
    with _open_picture(label_path) as label:
        label_size = label.size
    _check_same_size(image_path, image_size, label_path, label_size)
    width, height = image_size
    return height, width


def _check_same_size(
    image_path: Path, image_size: tuple[int, int], label_path: Path, label_size: tuple[int, int]
) -> None:
    if image_size != label_size:
        raise SampleRejectedError(
            f"{shown(label_path)}: label size {label_size[0]}x{label_size[1]} (WxH) differs from "
            f"image {shown(image_path)} size {image_size[0]}x{image_size[1]}"
        )


def _rgb_pixels(picture: Image.Image) -> U8Array:
    return np.asarray(picture if picture.mode == "RGB" else picture.convert("RGB"))


def _decode(path: Path, to_array: Callable[[Image.Image], U8Array]) -> U8Array:
    """Fully decode the picture at ``path`` (``load()``, so truncation is caught) into an array."""
    with _open_picture(path) as picture:
        try:
            picture.load()
            return to_array(picture)
        # Pillow reports broken data through many exception types (OSError for
        # truncation, SyntaxError for bad PNG chunks, ValueError, struct and zlib
        # errors, DecompressionBombError); any of them only excludes this file.
        except Exception as error:
            raise SampleRejectedError(f"{shown(path)}: corrupt or truncated ({error})") from None


def decode_sample(image_path: Path, label_path: Path) -> tuple[U8Array, U8Array]:
    """RGB image (H, W, 3) and class indices (H, W) of a sample; `SampleRejectedError` if bad."""
    image = _decode(image_path, _rgb_pixels)
    label = _decode(label_path, decode_label)
    height, width = image.shape[:2]
    _check_same_size(image_path, (width, height), label_path, (label.shape[1], label.shape[0]))
    return image, label


def _write_at(fd: int, array: U8Array, offset: int) -> None:
    data = np.ascontiguousarray(array).data.cast("B")
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def decode_into(
    jobs: Sequence[DecodeJob], images_file: Path, labels_file: Path
) -> list[tuple[str, str | None]]:
    """Decode each job into the cache files at its offsets: ``(name, reason or None)`` per job."""
    outcomes: list[tuple[str, str | None]] = []
    images_fd = os.open(images_file, os.O_WRONLY)
    labels_fd = os.open(labels_file, os.O_WRONLY)
    try:
        for job in jobs:
            try:
                image, label = decode_sample(job.image_path, job.label_path)
                if image.shape[:2] != (job.height, job.width):
                    raise SampleRejectedError(
                        f"{shown(job.image_path)}: changed while being cached"
                    )
            except SampleRejectedError as rejected:
                outcomes.append((job.name, str(rejected)))
                continue
            _write_at(images_fd, image, job.image_offset)
            _write_at(labels_fd, label, job.label_offset)
            outcomes.append((job.name, None))
    finally:
        os.close(images_fd)
        os.close(labels_fd)
    return outcomes
