"""The many-trainers phase in the results: measured as one document, checked, reported.

``python -m bench --phases trainers`` runs only this phase (the others'
results are kept from ``results.json``); its document is the ``trainers`` key
there and :func:`trainers_section` its section of ``results.md``.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from bench.presets import Preset
from bench.results import Results
from bench.trainers import FleetRun, measure_trainers
from bench.workspace import Workspace


def measure_trainers_phase(space: Workspace, preset: Preset) -> dict[str, Any]:
    """Run the phase; its document (configuration, load average, every run)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    wall = time.perf_counter()
    root = space.dataset(preset.train, preset.val, preset.seed)
    runs = measure_trainers(space, preset, root)
    return {
        "preset": preset.name,
        "started": started,
        "cpus": len(os.sched_getaffinity(0)),
        "batch": f"{preset.trainer_batch_size} x {preset.height} x {preset.width}",
        "seconds": preset.trainer_seconds,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "runs": [asdict(r) for r in runs],
    }


def targets(runs: list[FleetRun]) -> list[tuple[str, bool, str]]:
    """The issue's targets, per replica count: (target, met, the figures)."""
    checks = []
    for replicas in sorted({r.replicas for r in runs}):
        by_count = {r.trainers: r for r in runs if r.replicas == replicas}
        one, most = by_count.get(1), by_count[max(by_count)]
        where = f"{most.trainers} trainers, {replicas} replica(s)"
        checks.append((f"{where}: no exception", not most.errors, f"{len(most.errors)} died"))
        if one is not None and most is not one:
            ratio = most.aggregate / one.aggregate if one.aggregate else 0.0
            figures = f"{most.aggregate:.0f} vs {one.aggregate:.0f} samples/s = {ratio:.2f}x"
            checks.append((f"{where}: together >= 0.9x one trainer", ratio >= 0.9, figures))
            grown = most.server_anon_peak_mib - one.server_anon_peak_mib
            figures = f"anon peak {most.server_anon_peak_mib:.0f} MiB ({grown:+.0f} MiB vs 1)"
            checks.append((f"{where}: server memory (reported)", True, figures))
        spread = min(most.rates) / max(most.rates) if max(most.rates, default=0) else 0.0
        figures = f"{min(most.rates):.0f} / {max(most.rates):.0f} = {spread:.2f}"
        checks.append((f"{where}: slowest >= 0.5x fastest", spread >= 0.5, figures))
    return checks


def trainers_section(results: Results) -> list[str]:
    """The lines of the section of ``results.md``, or why the phase was not measured."""
    lines = ["", "## Many trainers on one server, and on two replicas", ""]
    document = results.trainers
    if not document:
        return [*lines, "Not measured (`python -m bench --phases trainers`)."]
    runs = [FleetRun(**r) for r in document["runs"]]
    lines += [
        f"Run of {document['started']}, preset `{document['preset']}`, {document['cpus']} CPUs; "
        f"load average (1, 5, 15 min) {_load(document['load_before'])} before and "
        f"{_load(document['load_after'])} after (other work shares this machine). Each "
        f"trainer is a process running `SegClient.iter_epoch` (uint8, {document['batch']}) "
        f"for {document['seconds']:g} s, all started at once; servers with default settings, "
        "one uvicorn worker each. Interval: the time between batches a trainer holds.",
        "",
        "| replicas | trainers | samples/s together | slowest | fastest | interval p50 | "
        "p99 | died | refused | deepest queue | server RSS peak | anon peak | load after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_row(r) for r in runs]
    lines += ["", "| target | met | figures |", "|---|---|---|"]
    lines += [f"| {t} | {'yes' if ok else '**no**'} | {f} |" for t, ok, f in targets(runs)]
    errors = sorted({e for r in runs for e in r.errors})
    if errors:
        lines += ["", "Exceptions that ended trainers:", ""]
        lines += [f"- `{e[:300]}`" for e in errors]
    return lines


def _row(r: FleetRun) -> str:
    return (
        f"| {r.replicas} | {r.trainers} | {r.aggregate:.0f} | {min(r.rates):.0f} | "
        f"{max(r.rates):.0f} | {r.interval_p50_ms:.0f} ms | {r.interval_p99_ms:.0f} ms | "
        f"{len(r.errors)} | {sum(r.refused.values()):.0f} | {r.queue_depth_peak:.0f} | "
        f"{r.server_rss_peak_mib:.0f} MiB | {r.server_anon_peak_mib:.0f} MiB | "
        f"{_load(r.load_after)} |"
    )


def _load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)
