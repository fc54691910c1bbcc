"""WebDataset in a process of its own: tar shards over HTTP, decoded in a torch DataLoader.

Started by :class:`bench.protocol.Probe` as ``python -m bench.wds_probe
--workers N --batch-size B --height H --width W``. What a trainer writes with
WebDataset for this task: shards shuffled, samples shuffled in a buffer, the
original JPEG and PNG decoded (Pillow), samples smaller than the crop
skipped (the chapter's filter), a random joint crop, the chapter's
normalisation, float32 NCHW image batches (and uint8 label batches) from a
``torch.utils.data.DataLoader`` with N workers. WebDataset reads ``http://``
shards through ``curl`` processes, the way it is shipped. Commands:

``epoch`` (urls, epoch, max_batches)
    one pass over the shards (at most ``max_batches`` batches, 0: all); when
    each batch was in hand.
"""

from __future__ import annotations

import argparse
import io
from typing import Any

import numpy as np
from PIL import Image
from segserve_client.protocol.normalize import normalize_sample

from bench.protocol import Message, now, serve, stamps_since

_SHUFFLE_BUFFER = 100


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.wds_probe")
    for name in ("--workers", "--batch-size", "--height", "--width"):
        parser.add_argument(name, type=int, required=True)
    return parser.parse_args()


class Pipeline:
    """The decode, filter, crop and normalise stages, picklable for the DataLoader's workers."""

    def __init__(self, height: int, width: int, seed: int) -> None:
        self.height, self.width = height, width
        self.rng = np.random.default_rng(seed)

    def decode(self, sample: dict[str, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """The image (uint8 RGB) and label (uint8 class indices) of a WebDataset sample."""
        with Image.open(io.BytesIO(sample["jpg"])) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        with Image.open(io.BytesIO(sample["png"])) as label:
            classes = np.asarray(label, dtype=np.uint8)
        return rgb, classes

    def usable(self, pair: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> bool:
        """The chapter's filter: the image is at least as large as the crop."""
        height, width = pair[1].shape
        return height >= self.height and width >= self.width

    def crop(
        self, pair: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """A random crop of both, the image normalised to float32 CHW."""
        image, label = pair
        top = int(self.rng.integers(label.shape[0] - self.height + 1))
        left = int(self.rng.integers(label.shape[1] - self.width + 1))
        window = (slice(top, top + self.height), slice(left, left + self.width))
        out = np.empty((3, self.height, self.width), dtype=np.float32)
        normalize_sample(image[window], out)
        return out, np.ascontiguousarray(label[window])


class WebDatasetLoader:
    """The trainer's side: one DataLoader per epoch over the shards at the given URLs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def hello(self) -> Message:
        """Import torch and webdataset (timed), as a trainer has them."""
        started = now()
        import torch  # noqa: F401
        import webdataset  # noqa: F401

        return {"import_s": now() - started}

    def loader(self, urls: list[str], epoch: int) -> Any:
        """The DataLoader of epoch ``epoch``."""
        import torch
        import webdataset as wds

        stages = Pipeline(self.args.height, self.args.width, seed=epoch)
        dataset = (
            wds.WebDataset(urls, shardshuffle=len(urls), seed=epoch, empty_check=False)
            .shuffle(_SHUFFLE_BUFFER)
            .map(stages.decode)
            .select(stages.usable)
            .map(stages.crop)
        )
        return torch.utils.data.DataLoader(
            dataset, batch_size=self.args.batch_size, num_workers=self.args.workers
        )

    def epoch(self, command: Message) -> Message:
        """One pass; when each batch was in hand."""
        limit = int(command.get("max_batches", 0))
        stamps: list[float] = []
        samples = 0
        started = now()
        for images, _labels in self.loader(list(command["urls"]), int(command["epoch"])):
            stamps.append(now())
            samples += int(images.shape[0])
            if limit and len(stamps) >= limit:
                break
        return {"samples": samples, "stamps": stamps_since(started, stamps)}


def main() -> None:
    """Serve WebDataset's measurements over the probe protocol."""
    loader = WebDatasetLoader(_parse())
    serve(loader.hello, {"epoch": loader.epoch})


if __name__ == "__main__":
    main()
