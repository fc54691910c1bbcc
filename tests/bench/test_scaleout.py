"""The scale-out phase's results: JSON round trip, per-core figure, report section, CPU meter."""

from __future__ import annotations

import os
from pathlib import Path

from bench.results import Environment, Results, ScaleoutRun, ScaleSeries
from bench.scaleout import cpu_seconds
from bench.scaleout_report import per_core, scaleout_section
from bench.stats import Epoch


def _series(route: str, replicas: int, seconds: float, cpu: float) -> ScaleSeries:
    epochs = [Epoch(1000, [seconds / 2, seconds]), Epoch(1000, [seconds / 2, seconds])]
    return ScaleSeries(route, replicas, "uint8", epochs, [cpu, cpu], [0.1, 0.1], 768_000.0)


def _results() -> Results:
    environment = Environment("small", "now", 2, 24.0, {}, 10, 10)
    run = ScaleoutRun(status="measured", started="now", cpus=2, load_before=[1.0, 1.0, 1.0])
    run.warm_ready = {"1": [0.9, 0.8, 1.0], "2": [1.0, 1.1, 0.9]}
    run.warm_cpu = {"1": [0.7, 0.7, 0.7], "2": [0.9, 0.9, 0.9]}
    run.series = [
        _series("direct", 1, 1.0, 0.5),
        _series("direct", 2, 0.5, 0.5),
        _series("nginx", 1, 2.0, 0.4),
    ]
    return Results(environment, scaleout=run)


def test_results_round_trip(tmp_path: Path) -> None:
    results = _results()
    results.save(tmp_path / "results.json")
    again = Results.load(tmp_path / "results.json")
    assert again.scaleout == results.scaleout


def test_results_without_the_phase_load(tmp_path: Path) -> None:
    results = _results()
    results.scaleout = ScaleoutRun()
    results.save(tmp_path / "results.json")
    assert Results.load(tmp_path / "results.json").scaleout.status == "not run"


def test_rate_per_core_and_ratio() -> None:
    run = _results().scaleout
    two = run.find("direct", 2, "uint8")
    assert two is not None
    assert two.rate == 2000.0
    assert two.per_core == 2000.0  # 1000 samples over 0.5 CPU-seconds
    assert per_core(run) == 2000.0
    assert run.find("nginx", 2, "uint8") is None
    lines = scaleout_section(_results())
    (row,) = [line for line in lines if line.startswith("| client spreads, no proxy | 2 |")]
    assert "| 2,000 | 2.00x | 1,536 | 2,000 | - |" in row
    (nginx,) = [line for line in lines if line.startswith("| through nginx | 1 |")]
    assert nginx.endswith("| 10,000 |")  # 2000 samples over 0.2 nginx CPU-seconds


def test_warm_starts_are_reported() -> None:
    lines = scaleout_section(_results())
    assert "| 1 | 0.900 | 0.800 | 0.700 | 3 |" in lines
    assert "| 2 | 1.000 | 0.900 | 0.900 | 3 |" in lines


def test_section_says_why_when_not_measured() -> None:
    results = _results()
    results.scaleout = ScaleoutRun(status="not run")
    assert scaleout_section(results)[-1] == "Not run."


def test_cpu_seconds_grow_with_work() -> None:
    before = cpu_seconds([os.getpid()])
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds([os.getpid()]) > before
