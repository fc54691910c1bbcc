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
from typing import Any

import mxnet as mx
from mxnet import gluon
from segserve_client import BatchRequest, SegClient
from segserve_client.gluon import DEFAULT_URL, VOCBatches

from examples.train_fcn import SCALE, common_arguments, fit, forever, summary, tiny_fcn

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
    try:
        return fit(net, trainer, forever(train_iter), steps, masked_cross_entropy, log)
    finally:
        train_iter.close()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists the options."""
    parser = common_arguments(__doc__.split("\n\n")[0], steps=30, batch_size=4)
    parser.add_argument("--size", type=int, default=512, help="crop side (%(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``train`` with the command line's options and sum it up."""
    args = parse_args(argv)
    start = time.perf_counter()
    losses = train(
        args.url, steps=args.steps, batch_size=args.batch_size, crop_size=(args.size, args.size),
        lr=args.lr, token=args.token, seed=args.seed,
    )  # fmt: skip
    shape = f"{args.batch_size} x {args.size} x {args.size}"
    print(summary(losses, time.perf_counter() - start, shape))


if __name__ == "__main__":
    main()
