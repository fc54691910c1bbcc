"""The scale-out section of ``results.md``: aggregate rate, ratio to one replica, per core."""

from __future__ import annotations

from bench.report import DELIVERS, _num, _rows, _x
from bench.results import Results, ScaleoutRun, ScaleSeries
from bench.stats import median

MB = 1e6


def _load(values: list[float]) -> str:
    return ", ".join(f"{x:.1f}" for x in values)


def _row(series: ScaleSeries, run: ScaleoutRun) -> list[str]:
    one = run.find(series.route, 1, series.mode)
    ratio = series.rate / one.rate if one is not None else float("nan")
    samples = sum(e.samples for e in series.epochs)
    proxy = sum(series.proxy_cpu)
    per_proxy_core = samples / proxy if proxy > 0 else float("nan")
    mb_s = series.rate * series.sample_bytes / MB if series.sample_bytes else float("nan")
    return [
        "through nginx" if series.route == "nginx" else "client spreads, no proxy",
        str(series.replicas),
        DELIVERS.get(series.mode, series.mode),
        _num(series.rate),
        _x(ratio),
        _num(mb_s),
        _num(series.per_core),
        _num(per_proxy_core) if series.route == "nginx" else "-",
    ]


def per_core(run: ScaleoutRun, mode: str = "uint8") -> float:
    """The sizing figure: median samples per replica CPU-second over the direct series."""
    rates = [s.per_core for s in run.series if s.route == "direct" and s.mode == mode]
    return median(rates)


def scaleout_section(results: Results) -> list[str]:
    """The scale-out table, or why it was not measured."""
    run = results.scaleout
    lines = ["", "## Scale-out", ""]
    if run.status != "measured" or not run.series:
        return [*lines, f"{run.status.capitalize()}."]
    head = ["route", "replicas", "delivers", "samples/s", "vs 1 replica", "MB/s"]
    head += ["samples per replica CPU-second", "samples per nginx CPU-second"]
    rounds = len(run.series[0].epochs)
    text = (
        f"Run of {run.started}, {run.wall_seconds:.0f} s; load average (1, 5, 15 min) "
        f"{_load(run.load_before)} before and {_load(run.load_after)} after, on "
        f"{run.cpus} CPUs shared with other work. `segserve serve` replicas with 1 uvicorn "
        "worker each on one warm cache, reached by the client given every replica's URL "
        "(it spreads its prefetched batches over them, as over a headless Service's "
        "addresses) and through one nginx running `deploy/nginx.conf` listing them all. "
        f"One epoch per configuration per round, {rounds} rounds in rotating order; "
        "samples/s are medians over the rounds. *samples per replica CPU-second*: the "
        "samples of all rounds over the CPU time (user + system, from /proc) the replicas "
        "spent on them: what one core serving segserve delivers, the figure the README's "
        "sizing guide uses. Client, nginx and replicas share this machine's CPUs, so the "
        "aggregate cannot grow with replicas past what those CPUs give: scaling over several "
        "machines is computed from the per-core figure, not measured here."
    )
    rows = [_row(s, run) for s in sorted(run.series, key=lambda s: (s.route, s.replicas))]
    figure = per_core(run)
    summary = (
        "Per-core figure (client spreads, uint8, median over the replica counts): "
        f"{_num(figure)} samples/s per core."
    )
    notes = [f"- {note}" for note in run.notes]
    return [*lines, text, "", *_rows(head, rows), "", summary, *_warm(run), *notes]


def _warm(run: ScaleoutRun) -> list[str]:
    """The warm starts of new replicas, per worker count."""
    if not run.warm_ready:
        return []
    rows = [
        [
            workers,
            f"{median(seconds):.3f}",
            f"{min(seconds):.3f}",
            f"{median(run.warm_cpu.get(workers, [])):.3f}",
            str(len(seconds)),
        ]
        for workers, seconds in sorted(run.warm_ready.items())
    ]
    head = ["workers", "start to `/readyz` s (median)", "fastest s", "CPU s used by then", "runs"]
    text = (
        "A new replica on a warm cache (what a pod scaled up with its cache built does): "
        "seconds from starting `segserve serve` to its first `/readyz` 200, one start at a "
        "time, and the CPU seconds its processes used by then (less sensitive to the "
        "machine's load than the wall time)."
    )
    return ["", text, "", *_rows(head, rows)]
