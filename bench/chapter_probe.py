"""The chapter's pipeline in a process of its own: ``VOCSegDataset`` and gluon ``DataLoader``.

Started by :class:`bench.protocol.Probe` as ``python -m bench.chapter_probe
ROOT --workers N --batch-size B --height H --width W``. The hello reports the
load times of the train and val datasets (``load_data_voc`` builds both); the
``epoch`` command iterates the train loader once, as the chapter's training
loop does (``max_batches``, optional: stop after that many), and reports when
each batch was ready. MXNet computes
asynchronously, so every timing waits for the arrays to be computed.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from bench.protocol import Message, now, serve, stamps_since


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chapter_probe")
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    return parser.parse_args()


class ChapterPipeline:
    """The chapter's train loader, built the way ``load_data_voc`` builds it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loader: Any = None
        self.examples = 0

    def load(self) -> Message:
        """Build the train and val datasets (timed, as the chapter's load) and the train loader."""
        started = now()
        import mxnet as mx
        from mxnet import gluon

        # The chapter's code, verbatim and untyped.
        chapter: Any = importlib.import_module("tests.chapter")

        imported = now()
        crop = (self.args.height, self.args.width)
        train = chapter.VOCSegDataset(True, crop, self.args.root)
        mx.nd.waitall()
        loaded_train = now()
        val = chapter.VOCSegDataset(False, crop, self.args.root)
        mx.nd.waitall()
        loaded_val = now()
        del val  # load_data_voc keeps it; the benchmark only iterates train
        self.examples = len(train)
        self.loader = gluon.data.DataLoader(
            train, self.args.batch_size, shuffle=True, last_batch="discard",
            num_workers=self.args.workers,
        )  # fmt: skip
        return {
            "import_s": imported - started,
            "load_train_s": loaded_train - imported,
            "load_val_s": loaded_val - loaded_train,
            "examples": self.examples,
            "loader_s": now() - loaded_val,
        }

    def epoch(self, command: Message) -> Message:
        """One pass over the train loader (its first ``max_batches`` batches, when given
        and not 0); when each batch was in hand."""
        limit = int(command.get("max_batches", 0))
        stamps: list[float] = []
        samples = 0
        started = now()
        for features, labels in self.loader:
            features.wait_to_read()
            labels.wait_to_read()
            stamps.append(now())
            samples += int(features.shape[0])
            if len(stamps) == limit:
                break
        return {"samples": samples, "stamps": stamps_since(started, stamps)}


def main() -> None:
    """Serve the chapter pipeline's measurements over the probe protocol."""
    pipeline = ChapterPipeline(_parse())
    serve(pipeline.load, {"epoch": pipeline.epoch})


if __name__ == "__main__":
    main()
