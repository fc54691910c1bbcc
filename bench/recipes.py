"""The cost of the training-recipe parameters: ``photometric`` and ``cat_max_ratio`` per batch.

``python -m bench.recipes [--preset full|small] [--out bench]`` runs this phase
alone. It builds batches in process (``service.batch.make_batch``, what a
server worker does for one request, without HTTP) on the preset's demo
dataset: 64 x 320 x 480 uint8 batches, plain, with ``photometric=true``, with
``cat_max_ratio=0.75`` and with both, configurations interleaved round by round
so that drifting machine load hits them alike; ratios are to the plain batch
of the same run. The results are merged into ``OUT/results.json`` (key
``recipes``) and ``OUT/results.md`` (a section between markers), leaving every
other phase's results as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from bench.presets import PRESETS, Preset
from bench.workspace import BenchError, Workspace, say
from service.batch import make_batch
from service.dataset import Split, open_dataset
from service.params import BatchSpec, CropSpec
from service.sampling import usable_indices

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


def measure(preset: Preset, split: Split) -> RecipeRun:
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


def markdown(run: RecipeRun) -> str:
    """The phase's section of ``results.md``."""
    plain = next(cost for cost in run.costs if cost.config == "plain").median
    lines = [
        "## Training-recipe parameters: cost per batch",
        "",
        f"`make_batch` in process on the demo dataset ({run.usable} usable train images), "
        f"{run.batch} crops "
        f"(preset {run.preset}, {run.started}; {len(run.costs[0].seconds)} batches each, "
        "configurations interleaved). Ratios are to the plain batch of the same run.",
        f"Load average before {_load(run.load_before)}, after {_load(run.load_after)} "
        "(other work shared the machine).",
        "",
        "| batch | median s/batch | min | ratio to plain |",
        "|---|---|---|---|",
    ]
    for cost in run.costs:
        ratio = cost.median / plain if plain else float("nan")
        lines.append(
            f"| {cost.config} | {cost.median:.3f} | {min(cost.seconds):.3f} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def _load(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def merge_json(path: Path, run: RecipeRun) -> None:
    """Set key ``recipes`` of the JSON document at ``path`` (created if absent)."""
    document: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    entry = asdict(run)
    for cost, measured in zip(entry["costs"], run.costs, strict=True):
        cost["median"] = measured.median
    document[NAME] = entry
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def merge_markdown(path: Path, section: str) -> None:
    """Put ``section`` between this phase's markers in ``path``, replacing an older one."""
    start, end = f"<!-- {NAME}:start -->", f"<!-- {NAME}:end -->"
    block = f"{start}\n{section}{end}\n"
    text = path.read_text("utf-8") if path.is_file() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + block + after
    else:
        text = text + ("\n" if text and not text.endswith("\n\n") else "") + block
    path.write_text(text, encoding="utf-8")


def run_phase(preset: Preset, out: Path, work: Path, cache_dir: Path | None = None) -> RecipeRun:
    """Measure on the preset's dataset and merge the results into ``out``.

    ``cache_dir``: where the decoded cache is (default: the workspace's, built on first use).
    """
    space = Workspace(work)
    root = space.dataset(preset.train, preset.val, preset.seed)
    dataset = open_dataset(root, cache_dir or space.caches / NAME)
    result = measure(preset, dataset.split("train"))
    out.mkdir(parents=True, exist_ok=True)
    merge_json(out / "results.json", result)
    merge_markdown(out / "results.md", markdown(result))
    say(f"recipes: merged into {out / 'results.md'}")
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """The command line of the phase."""
    parser = argparse.ArgumentParser(prog="python -m bench.recipes", description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="full")
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument(
        "--work-dir", type=Path, default=Path("/tmp/segserve-bench"), help="datasets and caches"
    )
    parser.add_argument("--cache-dir", type=Path, help="decoded cache (default: in WORK_DIR)")
    args = parser.parse_args(argv)
    run_phase(PRESETS[args.preset], args.out, args.work_dir, args.cache_dir)


if __name__ == "__main__":
    main()
