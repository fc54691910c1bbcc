"""The many-trainers phase on its own: measure, check the targets, merge into the results.

``python -m bench --phases trainers`` runs only this; a full run runs it after
the other phases. Its results are the ``trainers`` key of ``results.json`` and
the ``trainers`` section of ``results.md`` (:mod:`bench.sections`).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.presets import Preset
from bench.sections import merge_json, merge_markdown
from bench.trainers import FleetRun, measure_trainers
from bench.workspace import Workspace, say

NAME = "trainers"


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
            figures = f"peak anon {most.server_anon_peak_mib:.0f} MiB ({grown:+.0f} MiB)"
            checks.append((f"{where}: server memory reported", True, figures))
        spread = min(most.rates) / max(most.rates) if max(most.rates, default=0) else 0.0
        figures = f"{min(most.rates):.0f} / {max(most.rates):.0f} = {spread:.2f}"
        checks.append((f"{where}: slowest >= 0.5x fastest", spread >= 0.5, figures))
    return checks


def markdown(document: dict[str, Any]) -> str:
    """The section of ``results.md``."""
    runs = [_run(r) for r in document["runs"]]
    lines = [
        "## Many trainers on one server, and on two replicas",
        "",
        f"Run {document['started']}, preset `{document['preset']}`, {document['cpus']} CPUs; "
        f"load average before {_load(document['load_before'])}, "
        f"after {_load(document['load_after'])} (other work shares this machine). Each trainer "
        f"is a process running `SegClient.iter_epoch` (uint8, {document['batch']}) for "
        f"{document['seconds']:g} s, all started at once; servers with default settings, "
        "one uvicorn worker each. Interval: time between batches a trainer holds.",
        "",
        "| replicas | trainers | samples/s together | slowest | fastest | interval p50 | "
        "p99 | died | refused | deepest queue | server RSS peak | anon peak | load after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.replicas} | {r.trainers} | {r.aggregate:.0f} | {min(r.rates):.0f} | "
            f"{max(r.rates):.0f} | {r.interval_p50_ms:.0f} ms | {r.interval_p99_ms:.0f} ms | "
            f"{len(r.errors)} | {sum(r.refused.values()):.0f} | {r.queue_depth_peak:.0f} | "
            f"{r.server_rss_peak_mib:.0f} MiB | {r.server_anon_peak_mib:.0f} MiB | "
            f"{_load(r.load_after)} |"
        )
    lines += ["", "| target | met | figures |", "|---|---|---|"]
    lines += [f"| {t} | {'yes' if ok else '**no**'} | {f} |" for t, ok, f in targets(runs)]
    errors = sorted({e for r in runs for e in r.errors})
    if errors:
        lines += ["", "Exceptions that ended trainers:", ""]
        lines += [f"- `{e[:300]}`" for e in errors]
    if document.get("note"):
        lines += ["", document["note"]]
    return "\n".join(lines) + "\n"


def run_phase(preset: Preset, out: Path, work: Path, *, note: str = "") -> list[FleetRun]:
    """Measure the phase and merge it into ``out/results.json`` and ``out/results.md``."""
    out.mkdir(parents=True, exist_ok=True)
    space = Workspace(work)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    wall = time.perf_counter()
    root = space.dataset(preset.train, preset.val, preset.seed)
    runs = measure_trainers(space, preset, root)
    document = {
        "preset": preset.name,
        "started": started,
        "cpus": len(os.sched_getaffinity(0)),
        "batch": f"{preset.trainer_batch_size} x {preset.height} x {preset.width}",
        "seconds": preset.trainer_seconds,
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "wall_seconds": round(time.perf_counter() - wall, 1),
        "note": note,
        "runs": [asdict(r) for r in runs],
    }
    merge_json(out / "results.json", NAME, document)
    merge_markdown(out / "results.md", NAME, markdown(document))
    say(f"trainers: merged into {out / 'results.md'}")
    return runs


def _run(document: dict[str, Any]) -> FleetRun:
    return FleetRun(**document)


def _load(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)
