"""Running some phases keeps the others' results."""

from __future__ import annotations

import dataclasses

from bench.results import Environment, Results
from bench.run import CORE_FIELDS, PHASES, with_core


def _results(preset: str, marker: str) -> Results:
    environment = Environment(preset, marker, 2, 1.0, {}, 1, 1)
    results = Results(environment)
    results.codecs = {"from": marker}
    results.recipes = {"from": marker}
    results.trainers = {"from": marker}
    return results


def test_a_core_run_keeps_the_other_phases() -> None:
    kept = with_core(_results("full", "earlier"), _results("full", "now"))
    assert kept.environment.started == "now"
    assert kept.codecs == kept.recipes == kept.trainers == {"from": "earlier"}


def test_every_field_is_the_core_phase_or_a_phase_of_its_own() -> None:
    names = {f.name for f in dataclasses.fields(Results)}
    assert names == set(CORE_FIELDS) | (set(PHASES) - {"core"})
