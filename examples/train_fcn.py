"""Train a tiny FCN-style Gluon net on batches streamed from a segserve server.

The d2l chapter "Fully Convolutional Networks" in miniature: a few strided
Conv2D + BatchNorm + ReLU stages shrink the picture 8 times, a 1 x 1 convolution
turns the channels into the 21 classes, and a transposed convolution initialised
with the chapter's ``bilinear_kernel`` scales the class maps back to the input
size. No pretrained weights, nothing downloaded: it runs on a CPU in seconds.
The batches come from ``segserve_client.gluon.load_data_voc``, the chapter's
``load_data_voc`` fed over HTTP.

    make serve                                      # in another terminal
    .venv/bin/python examples/train_fcn.py --steps 40
    .venv/bin/python examples/train_fcn.py --height 320 --width 480 --batch-size 64  # the chapter's
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import mxnet as mx
import numpy as np
import numpy.typing as npt
from mxnet import autograd, gluon, init
from mxnet.gluon import nn
from segserve_client.gluon import DEFAULT_URL, load_data_voc

NUM_CLASSES = 21
STAGES = (16, 32, 64)  # channels of the stride-2 stages: the net shrinks by 2 ** len(STAGES)
SCALE = 2 ** len(STAGES)


def bilinear_kernel(in_channels: int, out_channels: int, kernel_size: int) -> npt.NDArray[Any]:
    """The chapter's bilinear upsampling weights, (in, out, k, k), for a Conv2DTranspose."""
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = (np.arange(kernel_size).reshape(-1, 1), np.arange(kernel_size).reshape(1, -1))
    filt = (1 - np.abs(og[0] - center) / factor) * (1 - np.abs(og[1] - center) / factor)
    weight = np.zeros((in_channels, out_channels, kernel_size, kernel_size), dtype=np.float32)
    weight[range(in_channels), range(out_channels), :, :] = filt
    return weight


def tiny_fcn(num_classes: int = NUM_CLASSES) -> Any:
    """Strided conv stages, a 1 x 1 conv to the classes, a transposed conv back up by SCALE."""
    net = nn.HybridSequential()
    for channels in STAGES:
        net.add(
            nn.Conv2D(channels, kernel_size=3, strides=2, padding=1, use_bias=False),
            nn.BatchNorm(),
            nn.Activation("relu"),
        )
    net.add(nn.Conv2D(num_classes, kernel_size=1))
    # As in the chapter (kernel 64, padding 16, stride 32), scaled to SCALE:
    # output side = (input side / SCALE - 1) * SCALE - 2 * padding + kernel = input side.
    kernel, padding = 2 * SCALE, SCALE // 2
    net.add(nn.Conv2DTranspose(num_classes, kernel_size=kernel, padding=padding, strides=SCALE))
    net.initialize(init.Xavier())
    upsample = bilinear_kernel(num_classes, num_classes, kernel)
    net[-1].initialize(init.Constant(mx.nd.array(upsample)), force_reinit=True)
    return net


_CHAPTER_LOSS = gluon.loss.SoftmaxCrossEntropyLoss(axis=1)  # per sample: mean over its pixels


def mean_loss(scores: Any, labels: Any) -> Any:
    """The chapter's loss, averaged over the batch."""
    return _CHAPTER_LOSS(scores, labels).mean()


def forever(batches: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    """``(X, Y)`` batches, epoch after epoch: every pass over ``batches`` is the next epoch."""
    while True:
        yield from batches


def train(
    url: str = DEFAULT_URL,
    *,
    steps: int = 40,
    batch_size: int = 8,
    crop_size: tuple[int, int] = (160, 240),
    lr: float = 0.01,
    optimizer: str = "adam",
    token: str | None = None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[float]:
    """Train a fresh ``tiny_fcn`` for ``steps`` batches of the train split; the loss of each step.

    ``seed`` fixes the initial weights (``mx.random.seed``) and the server's
    shuffle and crops, so that a run is repeatable.
    """
    height, width = crop_size
    if height % SCALE or width % SCALE:
        raise ValueError(f"crop height and width must be multiples of {SCALE}, got {crop_size}")
    mx.random.seed(seed)
    net = tiny_fcn()
    net.hybridize()
    params: dict[str, float] = {"learning_rate": lr, "wd": 1e-3}
    trainer = gluon.Trainer(net.collect_params(), optimizer, params)
    train_iter, _ = load_data_voc(batch_size, crop_size, url, token=token, seed=seed)
    try:
        return fit(net, trainer, forever(train_iter), steps, mean_loss, log)
    finally:
        train_iter.close()


def fit(
    net: Any,
    trainer: Any,
    batches: Iterable[tuple[Any, Any]],
    steps: int,
    objective: Callable[[Any, Any], Any],
    log: Callable[[str], None] = print,
) -> list[float]:
    """``steps`` optimiser steps of ``net`` on ``batches``; the loss of each step.

    ``objective(scores, labels)`` is the batch's mean loss, so each step is
    ``trainer.step(1)``.
    """
    losses: list[float] = []
    start = time.perf_counter()
    for step, (features, labels) in enumerate(islice(batches, steps), start=1):
        with autograd.record():
            loss = objective(net(features), labels)
        loss.backward()
        trainer.step(1)
        losses.append(float(loss.asscalar()))
        log(f"step {step:4d}  loss {losses[-1]:.4f}  {time.perf_counter() - start:6.1f} s")
    return losses


def summary(losses: Sequence[float], seconds: float, shape: str) -> str:
    """The first and last steps' mean loss and the run's time, for the command line."""
    if len(losses) < 2:
        return f"{len(losses)} step(s) of {shape} in {seconds:.1f} s"
    k = min(5, len(losses) // 2)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return (
        f"mean loss of the first {k} steps {first:.4f}, of the last {k} {last:.4f}\n"
        f"{len(losses)} steps of {shape} in {seconds:.1f} s"
    )


def common_arguments(description: str, *, steps: int, batch_size: int) -> argparse.ArgumentParser:
    """A parser with the options every example takes (server, steps, batch, optimiser, seed)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", default=DEFAULT_URL, help="segserve base URL (%(default)s)")
    parser.add_argument("--steps", type=int, default=steps, help="training steps (%(default)s)")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help="batch size (%(default)s)"
    )
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (%(default)s)")
    parser.add_argument("--token", default=None, help="bearer token, if the server needs one")
    parser.add_argument("--seed", type=int, default=0, help="weights and server seed")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--help`` lists the options."""
    parser = common_arguments(__doc__.split("\n\n")[0], steps=40, batch_size=8)
    parser.add_argument("--height", type=int, default=160, help="crop height (%(default)s)")
    parser.add_argument("--width", type=int, default=240, help="crop width (%(default)s)")
    parser.add_argument(
        "--optimizer", choices=("adam", "sgd"), default="adam", help="optimizer (%(default)s)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``train`` with the command line's options and sum it up."""
    args = parse_args(argv)
    start = time.perf_counter()
    losses = train(
        args.url, steps=args.steps, batch_size=args.batch_size,
        crop_size=(args.height, args.width), lr=args.lr, optimizer=args.optimizer,
        token=args.token, seed=args.seed,
    )  # fmt: skip
    shape = f"{args.batch_size} x {args.height} x {args.width}"
    print(summary(losses, time.perf_counter() - start, shape))


if __name__ == "__main__":
    main()
