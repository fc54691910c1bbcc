"""``results.png``: median samples/s per configuration, with the targets drawn in."""

from __future__ import annotations

from pathlib import Path

from bench.results import Results
from bench.stats import Series
from bench.targets import chapter_rate

COLORS = {
    "": "#7f7f7f",
    "uint8": "#1f77b4",
    "stream": "#17becf",
    "gluon-uint8": "#2ca02c",
    "gluon-float32": "#ff7f0e",
}


HATCHES = {"nginx-1r": "//", "nginx-2r": "xx", "direct-2r": ".."}
PLACES = {
    "nginx-1r": "nginx, 1 replica",
    "nginx-2r": "nginx, 2 replicas",
    "direct-2r": "2 replicas, no nginx",
}


def _label(series: Series) -> str:
    if series.kind in PLACES:
        return f"segserve {series.mode}, {PLACES[series.kind]}"
    if series.kind == "chapter":
        return f"chapter, {series.workers} DataLoader workers"
    return f"segserve {series.mode}, {series.workers} uvicorn worker{'s' * (series.workers > 1)}"


def write_plot(results: Results, path: Path) -> None:
    """A horizontal bar per configuration (whiskers: slowest and fastest round), log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = results.throughput + results.nginx.series
    rates = [s.rate for s in series]
    low = [s.rate - min(s.rates) for s in series]
    high = [max(s.rates) - s.rate for s in series]
    figure, axes = plt.subplots(figsize=(9, 0.45 * len(series) + 1.8))
    positions = list(range(len(series)))[::-1]
    colors = [COLORS.get(s.mode, "#999999") for s in series]
    hatches = [HATCHES.get(s.kind, "") for s in series]
    axes.barh(positions, rates, xerr=[low, high], color=colors, hatch=hatches)
    axes.set_yticks(positions, [_label(s) for s in series])
    axes.set_xscale("log")
    axes.set_xlabel("samples/s (median over rounds; whiskers: slowest and fastest round)")
    lines = [
        (10 * chapter_rate(results, 0), "10x chapter 0 workers", "#2ca02c"),
        (5 * chapter_rate(results, 2), "5x chapter 2 workers", "#98df8a"),
        (2000.0, "2,000 samples/s (uint8 target)", "#1f77b4"),
    ]
    for x, name, color in lines:
        axes.axvline(x, linestyle="--", color=color, label=name)
    axes.legend(loc="lower right", fontsize="small")
    env = results.environment
    axes.set_title(f"crop 320 x 480, batch 64, {env.train_images:,} train images ({env.started})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
