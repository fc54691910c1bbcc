"""``results.md``: the run's figures in markdown tables, each with its ratio to the chapter."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from bench.linkreport import link_section
from bench.memory import ProcessMemory
from bench.results import Results
from bench.stats import Series, median, passes, percentile
from bench.targets import MB, chapter_rate, growth_ratio, verdicts, worker_pss

DELIVERS = {
    "": "float32 NCHW `mx.np` arrays (in process)",
    "uint8": "uint8 NHWC numpy arrays (`BatchLoader`)",
    "stream": "uint8 NHWC numpy arrays (epoch stream, a connection per server worker)",
    "gluon-uint8": "float32 NCHW `mx.nd` arrays: uint8 on the wire, normalised by the client",
    "gluon-float32": "float32 NCHW `mx.nd` arrays: float32 on the wire, normalised by the server",
}


def _x(ratio: float) -> str:
    return "-" if math.isnan(ratio) else f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x"


def _num(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _ms(seconds: float) -> str:
    """Milliseconds, with a decimal below 100."""
    return _num(seconds * 1e3, 1 if seconds < 0.1 else 0)


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def header(results: Results) -> list[str]:
    """Title and the conditions of the run."""
    env = results.environment
    load = ", ".join(f"{x:.1f}" for x in env.load_before)
    after = ", ".join(f"{x:.1f}" for x in env.load_after)
    versions = ", ".join(f"{name} {v}" for name, v in env.versions.items())
    return [
        "# segserve against the chapter's own pipeline",
        "",
        f"Run of {env.started}, preset `{env.preset}`, {env.wall_seconds / 60:.1f} min wall time. "
        f"Dataset: the synthetic demo set in the VOC2012 layout, {env.train_images:,} train + "
        f"{env.val_images:,} val images ({env.usable_train:,} train images pass the chapter's "
        "320 x 480 crop filter). Crop 320 x 480, batch 64, train split, `last_batch='discard'`.",
        "",
        f"Machine: {env.cpus} CPUs, {env.memory_gib:g} GiB, shared with other work; load "
        f"average (1, 5, 15 min) {load} before the run and {after} after. {versions}.",
        "",
        "Every ratio compares with the chapter's pipeline measured in this same run, as "
        "*times better*: a rate divided by the chapter's rate, or the chapter's time divided "
        "by a time. Only ratios are comparable between runs on a shared machine.",
    ]


def targets_section(results: Results) -> list[str]:
    """The issue's targets, met or missed."""
    rows = [[v.target, v.measured, "met" if v.met else "**missed**"] for v in verdicts(results)]
    return ["", "## Targets", "", *_rows(["target", "measured", ""], rows)]


def _throughput_row(series: Series, base0: float, base2: float, base: Series) -> list[str]:
    who = "chapter, DataLoader" if series.kind == "chapter" else "segserve, uvicorn"
    p50, p99 = series.batch_percentile(50), series.batch_percentile(99)
    return [
        f"{who} {series.workers} worker{'s' if series.workers != 1 else ''}",
        DELIVERS.get(series.mode, series.mode),
        f"{_num(series.rate)} ({_x(series.rate / base0)})",
        _x(series.rate / base2),
        _num(series.megabytes_per_second),
        f"{_ms(p50)} ({_x(base.batch_percentile(50) / p50)})",
        f"{_ms(p99)} ({_x(base.batch_percentile(99) / p99)})",
        f"{_ms(series.first)} ({_x(base.first / series.first)})",
    ]


def throughput_section(results: Results) -> list[str]:
    """Samples/s, MB/s, time per batch and to the first batch, per configuration."""
    base = results.series("chapter-0w")
    if base is None:
        return []
    base0, base2 = chapter_rate(results, 0), chapter_rate(results, 2)
    head = ["configuration", "delivers", "samples/s (vs chapter 0 w)", "vs chapter 2 w"]
    head += ["MB/s on the wire", "p50 ms/batch", "p99 ms/batch", "first batch ms"]
    rows = [_throughput_row(s, base0, base2, base) for s in results.throughput]
    rounds = len(base.epochs)
    return [
        "",
        "## Throughput",
        "",
        f"{passes(results.environment.min_seconds)}; {rounds} rounds in rotating order; "
        "samples/s and MB/s are medians over the rounds, from asking for the first batch to "
        "holding the last. p50 / p99 are over the times between consecutive batches of all "
        f"rounds (a round's first batch excluded: {base.batches} intervals for the "
        "chapter). Ratios in "
        "brackets are against the chapter with 0 workers. The chapter's batches are ready "
        "when MXNet has computed them (`wait_to_read`); segserve's when the client hands "
        "them over; a uint8 batch is released when the next is asked for, as by a trainer "
        "that keeps none, so its memory is reused. MB/s on the wire: safetensors bodies "
        "(uint8: 614,400 bytes of image and 153,600 of label per sample).",
        "",
        *_rows(head, rows),
    ]


NGINX_PLACES = {
    "nginx-1r": "through nginx, 1 replica",
    "nginx-2r": "through nginx, 2 replicas",
    "direct-2r": "client given both replicas, no nginx",
}


def _nginx_row(series: Series, results: Results, base: Series) -> list[str]:
    alone = results.series(f"segserve-1w-{series.mode}")
    p50, p99 = series.batch_percentile(50), series.batch_percentile(99)
    return [
        NGINX_PLACES.get(series.kind, series.kind),
        DELIVERS.get(series.mode, series.mode),
        f"{_num(series.rate)} ({_x(series.rate / chapter_rate(results, 0))})",
        _x(series.rate / alone.rate) if alone else "-",
        _num(series.megabytes_per_second),
        f"{_ms(p50)} ({_x(base.batch_percentile(50) / p50)})",
        f"{_ms(p99)} ({_x(base.batch_percentile(99) / p99)})",
    ]


def nginx_section(results: Results) -> list[str]:
    """Samples/s through nginx with 1 and 2 replicas, and straight to both replicas."""
    run = results.nginx
    lines = ["", "## Through nginx", ""]
    base = results.series("chapter-0w")
    if run.status != "measured" or not run.series or base is None:
        return [*lines, f"{run.status.capitalize()}."]
    head = ["configuration", "delivers", "samples/s (vs chapter 0 w)", "vs 1 replica alone"]
    head += ["MB/s on the wire", "p50 ms/batch", "p99 ms/batch"]
    rows = [_nginx_row(s, results, base) for s in run.series]
    return [
        *lines,
        f"Two `segserve serve` replicas, 1 uvicorn worker each, on this machine and sharing "
        f"the run's decoded cache, behind nginx {run.version} running `{run.config}` as "
        "deployed (`worker_processes auto`, the same proxy buffers, upstream keepalive), "
        "changed only where it cannot apply here: one `server 127.0.0.1:<port> max_fails=0;` "
        "line per replica, a loopback listen port, pid, log and temp paths in the work "
        "folder, and `access_log off`. One nginx lists the first replica, another both; the "
        "third configuration gives segserve's client both replicas' URLs, over which it "
        "spreads its prefetched requests. The client, nginx and the replicas share the "
        f"machine's {results.environment.cpus} CPUs. "
        f"{passes(results.environment.min_seconds)}; "
        f"{len(run.series[0].epochs)} rounds in rotating order, after the throughput phase; "
        "figures as in the throughput table, ratios in brackets against the chapter with "
        "0 workers. *vs 1 replica alone*: against the same mode from the 1-worker server "
        "without nginx in the throughput table.",
        "",
        *_rows(head, rows),
    ]


def _to_first_batch(results: Results) -> list[tuple[str, list[float]]]:
    """Seconds from nothing to a first batch in hand: the chapter's, then segserve's."""
    startup, base = results.startup, results.series("chapter-0w")
    first = base.epochs[0].first if base and base.epochs else math.nan
    loads = [load + first for load in startup.chapter_load[:1]]
    figures = [("the chapter's load + its first batch (0 workers)", loads)]
    for workers, ready in sorted(startup.warm_ready.items()):
        firsts = startup.first_batch.get(workers, [])
        totals = [r + f for r, f in zip(ready, firsts, strict=False)]
        name = f"warm server start + a new client's first uint8 batch, {workers} worker(s)"
        figures.append((name, totals))
    return figures


def _startup_rows(results: Results) -> list[list[str]]:
    startup = results.startup
    figures = [
        ("the chapter's load: `VOCSegDataset` train + val", startup.chapter_load),
        ("cold build: `segserve prepare` on an empty cache", startup.cold_build),
        ("cold server start to `/readyz`, empty cache, 1 worker", startup.cold_ready),
    ]
    for workers, seconds in sorted(startup.warm_ready.items()):
        figures.append((f"warm server start to `/readyz`, {workers} worker(s)", seconds))
    figures.append(("warm `open_dataset()` in process", startup.open_dataset))
    first = _to_first_batch(results)
    return _figure_rows(figures, median(startup.chapter_load)) + _figure_rows(
        first, median(first[0][1])
    )


def _figure_rows(figures: list[tuple[str, list[float]]], base: float) -> list[list[str]]:
    """Rows of name, median seconds, runs and the ratio ``base`` / median."""
    return [[name, _num(median(s), 3), str(len(s)), _x(base / median(s))] for name, s in figures]


def startup_section(results: Results) -> list[str]:
    """Cold and warm start-up, against the chapter's load."""
    return [
        "",
        "## Start-up",
        "",
        "Seconds, medians over the runs counted. The chapter's load is the two "
        "`VOCSegDataset(...)` calls of `load_data_voc` (read every image, normalise), "
        "waited for with `mx.nd.waitall()`, MXNet import excluded; `segserve prepare` is "
        "timed as a whole process. The last rows compare the time from nothing to a first "
        "batch in hand with the chapter's load plus its first batch. Decoded cache on disk: "
        f"{results.startup.cache_bytes / MB:,.0f} MB for "
        f"{results.environment.train_images + results.environment.val_images:,} images.",
        "",
        *_rows(["figure", "seconds", "runs", "vs the chapter"], _startup_rows(results)),
    ]


_MEMORY_FIELDS = ("rss", "peak_rss", "cache_rss", "anon", "pss", "pss_outside_cache", "uss")


def _memory_rows(workers: str, members: list[ProcessMemory]) -> list[list[str]]:
    rows = []
    for m in members:
        sizes = [getattr(m, name) for name in _MEMORY_FIELDS]
        rows.append([f"{workers} worker(s)", m.role, *(f"{x / MB:,.0f}" for x in sizes)])
    total = [sum(getattr(m, name) for m in members) for name in _MEMORY_FIELDS]
    return [*rows, [f"{workers} worker(s)", "**all**", *(f"{x / MB:,.0f}" for x in total)]]


def memory_section(results: Results) -> list[str]:
    """RSS, peak RSS, cache pages, private memory, PSS and USS of every server process."""
    memory = results.startup.memory
    rows = [row for workers, m in sorted(memory.items()) for row in _memory_rows(workers, m)]
    totals = {w: sum(m.pss for m in members) for w, members in memory.items()}
    added = totals.get("2", math.nan) - totals.get("1", math.nan)
    head = ["server", "process", "RSS MB", "peak RSS MB", "cache pages in RSS MB"]
    head += ["RssAnon MB", "PSS MB", "PSS without cache MB", "USS MB"]
    return [
        "",
        "## Server memory",
        "",
        "Read from `/proc` after the server served one epoch of uint8 and one of float32 "
        "batches. The decoded cache is memory-mapped: its pages are page cache, in memory "
        "once however many processes read them, yet they count in the RSS of every process "
        "that touched them. PSS shares every page out among the processes mapping it; "
        "*PSS without cache* leaves the cache's pages out; USS counts only pages no other "
        f"process maps. A worker of the 2-worker server: "
        f"{worker_pss(results, outside_cache=False) / MB:,.0f} MB PSS, "
        f"{worker_pss(results) / MB:,.0f} MB without the cache; the whole 2-worker server "
        f"(its supervisor included) has {added / MB:,.0f} MB more PSS than the 1-worker one.",
        "",
        *_rows(head, rows),
    ]


def growth_section(results: Results) -> list[str]:
    """Time per batch on the base and the larger dataset."""
    if not results.growth:
        return []
    base = median(results.growth[0].seconds)
    rows = [
        [
            size.label,
            f"{size.train_images:,} + {size.val_images:,}",
            f"{size.cache_bytes / MB:,.0f}",
            _ms(median(size.seconds)),
            _ms(percentile(size.seconds, 99)),
            str(len(size.seconds)),
            f"{median(size.seconds) / base:.2f}",
        ]
        for size in results.growth
    ]
    head = ["dataset", "train + val images", "cache MB", "p50 ms/batch", "p99 ms/batch"]
    head += ["batches", "p50 / 1x p50"]
    first, last = results.growth[0], results.growth[-1]
    env = results.environment
    smaller = first.train_images + first.val_images < env.train_images + env.val_images
    why = (
        "The 1x set is smaller than the main dataset, so that the large one fits this "
        "run's time and disk budget. "
        if smaller
        else ""
    )
    return [
        "",
        "## Growth",
        "",
        "uint8 batches of the train split fetched one at a time (no prefetch) from a "
        "1-worker server per dataset, the sizes asked in alternating chunks. "
        f"{why}{last.label} / 1x median time per batch: {growth_ratio(results):.2f}.",
        "",
        *_rows(head, rows),
    ]


def write_report(
    results: Results, path: Path, *, plot_name: str, sections: Sequence[list[str]] = ()
) -> None:
    """Write ``results.md`` for ``results``; the plot is linked as ``plot_name``.

    ``sections``: the lines of further sections (phases with a report module of
    their own), placed after the core ones.
    """
    lines = header(results) + targets_section(results) + throughput_section(results)
    lines += nginx_section(results) + link_section(results.link)
    lines += startup_section(results) + memory_section(results) + growth_section(results)
    lines += [line for section in sections for line in section]
    lines += ["", f"![samples/s per configuration]({plot_name})", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
