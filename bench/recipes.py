"""The cost of the training-recipe parameters: ``photometric`` and ``cat_max_ratio`` per batch.

``python -m bench --phases recipes`` (``make bench-recipes``) runs this phase
alone. It builds batches in process (``service.batch.make_batch``, what a
server worker does for one request, without HTTP) on the preset's demo
dataset: 64 x 320 x 480 uint8 batches, plain, with ``photometric=true``, with
``cat_max_ratio=0.75`` and with both, configurations interleaved round by round
so that drifting machine load hits them alike; ratios are to the plain batch
of the same run. The results are key ``recipes`` of ``results.json`` and a
section of ``results.md``; a run of this phase alone keeps the other phases'.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from bench.presets import Preset
from bench.workspace import BenchError, Workspace, say
from service.batch import make_batch
from service.dataset import open_dataset
from service.params import BatchSpec, CropSpec
from service.sampling import usable_indices
from service.source import SplitSource

NAME: Final = "recipes"
CONFIGS: Final[dict[str, dict[str, Any]]] = {
    "plain": {},
    "photometric": {"photometric": True},
    "cat_max_ratio=0.75": {"cat_max_ratio": 0.75},
    "both": {"photometric": True, "cat_max_ratio": 0.75},
}
ROUNDS: Final = {"full": 5, "small": 1}
BATCHES_PER_ROUND: Final = {"full": 3, "small": 1}


@dataclass
class RecipeCost:
    """Seconds per batch of one configuration, every timed batch of the run."""

    config: str
    seconds: list[float]

    @property
    def median(self) -> float:
        """The median seconds per batch."""
        return statistics.median(self.seconds)


@dataclass
class RecipeRun:
    """One run of the phase: where, on what, under which load, and its costs."""

    preset: str
    started: str
    batch: str
    usable: int
    load_before: list[float]
    load_after: list[float] = field(default_factory=list)
    costs: list[RecipeCost] = field(default_factory=list)


def _spec(preset: Preset, params: dict[str, Any], seed: int) -> BatchSpec:
    crop = CropSpec(preset.height, preset.width, **params)
    return BatchSpec(crop, batch_size=preset.batch_size, seed=seed)


def measure(preset: Preset, split: SplitSource) -> RecipeRun:
    """Time every configuration, interleaved, on ``split``."""
    rounds, per_round = ROUNDS.get(preset.name, 1), BATCHES_PER_ROUND.get(preset.name, 1)
    run = RecipeRun(
        preset=preset.name,
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        batch=f"{preset.batch_size} x {preset.height} x {preset.width} uint8",
        usable=len(usable_indices(split, _spec(preset, {}, 0).crop)),
        load_before=list(os.getloadavg()),
    )
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    make_batch(split, _spec(preset, {}, 0), 0)  # page the cache in before timing
    for round_number in range(rounds):
        for name, params in CONFIGS.items():
            spec = _spec(preset, params, seed=round_number)
            for batch in range(per_round):
                started = time.perf_counter()
                built = make_batch(split, spec, batch)
                times[name].append(time.perf_counter() - started)
                if len(built.index) != preset.batch_size:
                    raise BenchError(f"batch {batch} of {name} has {len(built.index)} samples")
        say(f"recipes: round {round_number + 1}/{rounds}")
    run.costs = [RecipeCost(name, seconds) for name, seconds in times.items()]
    run.load_after = list(os.getloadavg())
    return run


def document(run: RecipeRun) -> dict[str, Any]:
    """The run as plain data for ``results.json``, with each configuration's median."""
    entry = asdict(run)
    for cost, measured in zip(entry["costs"], run.costs, strict=True):
        cost["median"] = measured.median
    return entry


def recipes_section(entry: dict[str, Any]) -> list[str]:
    """The lines of this phase's section of ``results.md`` (none when it was not run)."""
    if not entry:
        return []
    costs = entry["costs"]
    plain = next(cost["median"] for cost in costs if cost["config"] == "plain")
    lines = [
        "",
        "## Training-recipe parameters: cost per batch",
        "",
        f"`make_batch` in process on the demo dataset ({entry['usable']} usable train images), "
        f"{entry['batch']} crops (preset {entry['preset']}, {entry['started']}; "
        f"{len(costs[0]['seconds'])} batches each, configurations interleaved). Ratios are "
        f"to the plain batch of the same run. Load average before {_load(entry['load_before'])}, "
        f"after {_load(entry['load_after'])} (other work shared the machine).",
        "",
        "| batch | median s/batch | min | ratio to plain |",
        "|---|---|---|---|",
    ]
    for cost in costs:
        ratio = cost["median"] / plain if plain else float("nan")
        lines.append(
            f"| {cost['config']} | {cost['median']:.3f} | {min(cost['seconds']):.3f} "
            f"| {ratio:.2f}x |"
        )
    return lines


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def measure_recipes(space: Workspace, preset: Preset) -> dict[str, Any]:
    """The phase on the preset's demo dataset (its cache built in the workspace on first use)."""
    root = space.dataset(preset.train, preset.val, preset.seed)
    dataset = open_dataset(root, space.caches / NAME)
    return document(measure(preset, dataset.split("train")))
