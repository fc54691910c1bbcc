"""``examples/train_fcn.py`` against a live server: the tiny FCN's loss goes down."""

from __future__ import annotations

import math

import pytest

from tests.client.live import CROP, LiveServer

pytest.importorskip("mxnet", reason="needs the mxnet extra")
pytestmark = pytest.mark.mxnet

STEPS, BATCH, WINDOW = 40, 4, 5
# Measured with seeds 0..5 on this data: last/first window mean 0.44..0.64 after
# 30 steps, 0.44..0.59 after 60; 0.39 for the 40 steps below (seed 0). A run is
# repeatable for a seed.
RATIO = 0.7


def test_tiny_fcn_loss_goes_down(live: LiveServer) -> None:
    from examples.train_fcn import train

    lines: list[str] = []
    losses = train(
        live.url, steps=STEPS, batch_size=BATCH, crop_size=CROP, seed=0, log=lines.append
    )
    assert len(losses) == len(lines) == STEPS  # several epochs of the 24 usable samples
    assert all(math.isfinite(value) for value in losses), losses
    first, last = sum(losses[:WINDOW]) / WINDOW, sum(losses[-WINDOW:]) / WINDOW
    assert last < RATIO * first, losses
