"""Train the tiny FCN with mmsegmentation's Pascal VOC training recipe, served by segserve.

The recipe of mmsegmentation's ``pascal_voc12_aug`` pipeline, as request
parameters: random rescale 0.5-2.0 (``scale``), a 512 x 512 crop padded with
255 (``small=pad``, ``void=ignore``), ``RandomCrop(cat_max_ratio=0.75)``,
horizontal flip and ``PhotoMetricDistortion`` (``photometric``). The loss
skips the 255 pixels (borders and padding), as mmsegmentation's does; the net
is :func:`examples.train_fcn.tiny_fcn`. Every batch is a pure function of
(seed, epoch, batch), so a run is repeatable.

    make serve                                       # in another terminal
    .venv/bin/python examples/train_recipe.py --steps 30
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

import mxnet as mx
from mxnet import autograd, gluon
from segserve_client import BatchRequest, SegClient
from segserve_client.gluon import DEFAULT_URL, VOCBatches

from examples.train_fcn import SCALE, forever, tiny_fcn

IGNORE_INDEX = 255


def recipe(batch_size: int, crop_size: tuple[int, int], seed: int) -> BatchRequest:
    """mmsegmentation's VOC training pipeline as one batch request."""
    return BatchRequest(
        *crop_size, batch_size=batch_size, seed=seed,
        scale=(0.5, 2.0), small="pad", void="ignore",  # 512 x 512 padded with 255
        cat_max_ratio=0.75, flip=True, photometric=True,
    )  # fmt: skip


def masked_cross_entropy(scores: Any, labels: Any) -> Any:
    """Mean cross-entropy over the pixels whose label is not 255 (mmsegmentation's ignore)."""
    known = labels != IGNORE_INDEX
    safe = labels * known  # any class index where ignored: those terms are masked out
    per_pixel = -mx.nd.pick(mx.nd.log_softmax(scores, axis=1), safe, axis=1)
    return (per_pixel * known).sum() / mx.nd.maximum(known.sum(), 1)


def train(
    url: str = DEFAULT_URL,
    *,
    steps: int = 30,
    batch_size: int = 4,
    crop_size: tuple[int, int] = (512, 512),
    lr: float = 0.01,
    token: str | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Train a fresh ``tiny_fcn`` for ``steps`` recipe batches of ``train``; each step's loss."""
    if crop_size[0] % SCALE or crop_size[1] % SCALE:
        raise ValueError(f"crop height and width must be multiples of {SCALE}, got {crop_size}")
    mx.random.seed(seed)
    net = tiny_fcn()
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "adam", {"learning_rate": lr, "wd": 1e-3})
    client = SegClient(url, token=token)
    train_iter = VOCBatches(client, "train", recipe(batch_size, crop_size, seed))
    losses: list[float] = []
    start = time.perf_counter()
    try:
        for step, (features, labels) in enumerate(islice(forever(train_iter), steps), start=1):
            with autograd.record():
                loss = masked_cross_entropy(net(features), labels)
            loss.backward()
            trainer.step(1)  # the loss is already a mean
            losses.append(float(loss.asscalar()))
            log(f"step {step:4d}  loss {losses[-1]:.4f}  {time.perf_counter() - start:6.1f} s")
    finally:
        train_iter.close()
    return losses


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists the options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="segserve base URL (%(default)s)")
    parser.add_argument("--steps", type=int, default=30, help="training steps (%(default)s)")
    parser.add_argument("--batch-size", type=int, default=4, help="batch size (%(default)s)")
    parser.add_argument("--size", type=int, default=512, help="crop side (%(default)s)")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (%(default)s)")
    parser.add_argument("--token", default=None, help="bearer token, if the server needs one")
    parser.add_argument("--seed", type=int, default=0, help="weights and server seed")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``train`` with the command line's options and sum it up."""
    args = parse_args(argv)
    start = time.perf_counter()
    losses = train(
        args.url, steps=args.steps, batch_size=args.batch_size, crop_size=(args.size, args.size),
        lr=args.lr, token=args.token, seed=args.seed,
    )  # fmt: skip
    if len(losses) >= 2:
        k = min(5, len(losses) // 2)
        first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
        print(f"mean loss of the first {k} steps {first:.4f}, of the last {k} {last:.4f}")
        print(f"{len(losses)} steps of {args.batch_size} x {args.size} x {args.size} "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
