"""The recipes phase: every configuration timed, its section rendered from results.json data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from bench.presets import PRESETS
from bench.recipes import CONFIGS, document, measure, recipes_section
from bench.results import Environment, Results
from tests.service.memsource import coded_source


def test_every_configuration_is_timed_and_reported() -> None:
    preset = dataclasses.replace(PRESETS["small"], name="tiny", batch_size=2, height=8, width=8)
    source = coded_source([(12, 12)] * 4, seed=1)
    entry = document(measure(preset, source))
    assert [cost["config"] for cost in entry["costs"]] == list(CONFIGS)
    assert all(len(cost["seconds"]) == 1 and cost["median"] > 0 for cost in entry["costs"])
    assert entry["usable"] == 4
    lines = recipes_section(json.loads(json.dumps(entry)))
    assert "## Training-recipe parameters: cost per batch" in lines
    assert (
        sum(line.startswith(("| plain", "| photometric", "| cat_max", "| both")) for line in lines)
        == 4
    )
    assert any("1.00x" in line for line in lines)


def test_results_keep_the_phase_through_json(tmp_path: Path) -> None:
    environment = Environment("small", "now", 2, 1.0, {}, 1, 1)
    entry = {"preset": "small", "costs": []}
    path = tmp_path / "results.json"
    Results(environment, recipes=entry).save(path)
    assert Results.load(path).recipes == entry
    assert recipes_section({}) == []
