"""``examples/train_recipe.py`` against a live server: the recipe's batches train the tiny FCN."""

from __future__ import annotations

import math

import pytest

from tests.client.live import CROP, LiveServer

pytest.importorskip("mxnet", reason="needs the mxnet extra")
pytestmark = [pytest.mark.mxnet, pytest.mark.slow]

STEPS, BATCH, WINDOW = 30, 4, 5


def test_recipe_training_runs_and_learns(live: LiveServer) -> None:
    from examples.train_recipe import recipe, train

    request = recipe(BATCH, CROP, seed=0)
    assert (request.small, request.void, request.cat_max_ratio) == ("pad", "ignore", 0.75)
    assert (request.scale, request.flip, request.photometric) == ((0.5, 2.0), True, True)
    lines: list[str] = []
    losses = train(live.url, steps=STEPS, batch_size=BATCH, crop_size=CROP, log=lines.append)
    assert len(losses) == len(lines) == STEPS
    assert all(math.isfinite(value) for value in losses), losses
    first, last = sum(losses[:WINDOW]) / WINDOW, sum(losses[-WINDOW:]) / WINDOW
    assert last < first, losses
