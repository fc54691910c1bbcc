"""The link phase in ``results.md``: its targets, its links and one table per link."""

from __future__ import annotations

import math

from bench.results import LinkRun, LinkSeries
from bench.stats import median, passes
from bench.targets import Verdict

LINK_TITLES = {"loopback": "loopback", "1gbit": "1 Gbit/s", "10gbit": "10 Gbit/s"}
DELIVERS = {
    ("segserve", "gluon-uint8"): "Gluon `load_data_voc`: float32 NCHW `mx.nd`",
    ("segserve", "uint8"): "`BatchLoader`: uint8 NHWC numpy",
    ("segserve", "stream"): "epoch stream: uint8 NHWC numpy",
    ("webdataset", ""): "torch DataLoader: float32 NCHW tensors",
    ("chapter", ""): "the chapter's DataLoader: float32 NCHW `mx.np`",
}
MB = 1e6


def _x(ratio: float) -> str:
    return "-" if math.isnan(ratio) else f"{ratio:.2f}x"


def _num(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _samples(series: LinkSeries) -> int:
    return sum(epoch.samples for epoch in series.epochs)


def rate(series: LinkSeries | None) -> float:
    """Median samples/s over the epochs; NaN when not measured."""
    return median([e.rate for e in series.epochs]) if series and series.epochs else math.nan


def per_sample(series: LinkSeries, values: list[float] | list[int]) -> float:
    """A per-epoch cost summed over the epochs, per sample delivered."""
    samples = _samples(series)
    return sum(values) / samples if samples else math.nan


def wire_bytes(series: LinkSeries) -> float:
    """Bytes per sample the trainer received on the link, else the payload sent per sample."""
    measured = per_sample(series, series.wire_bytes)
    return measured if measured > 0 else series.body_bytes


def ratio_to(run: LinkRun, series: LinkSeries, key: str) -> float:
    """``series``' rate over the rate of the series ``key``."""
    return rate(series) / rate(run.find(key))


def _name(series: LinkSeries) -> str:
    if series.pipeline == "segserve":
        return f"segserve `{series.encoding}`"
    if series.pipeline == "webdataset":
        return f"WebDataset over nginx, {series.workers} worker{'s' if series.workers != 1 else ''}"
    return "the chapter's pipeline, 0 workers"


def _row(run: LinkRun, series: LinkSeries) -> list[str]:
    raw = f"{series.link}-segserve-{series.mode}-raw"
    vs_raw = ratio_to(run, series, raw) if series.pipeline == "segserve" else math.nan
    vs_wds = ratio_to(run, series, f"{series.link}-webdataset-2w")
    server = per_sample(series, series.server_cpu)
    client = per_sample(series, series.client_cpu)
    return [
        _name(series),
        DELIVERS.get((series.pipeline, series.mode), series.mode),
        _num(rate(series)),
        _x(vs_raw),
        _x(vs_wds),
        _num(wire_bytes(series) / 1e3, 1) if series.pipeline != "chapter" else "-",
        _num(server * 1e3, 2) if series.pipeline != "chapter" else "-",
        _num(client * 1e3, 2),
    ]


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


HEAD = ["pipeline", "in the trainer's hands", "samples/s", "vs raw", "vs WebDataset 2 w"]
HEAD += ["KB/sample on the wire", "server CPU ms/sample", "trainer CPU ms/sample"]


def best_encoding(run: LinkRun, link: str, mode: str) -> LinkSeries | None:
    """The fastest segserve series of ``mode`` on ``link``."""
    found = [s for s in run.series if s.link == link and s.mode == mode and s.epochs]
    return max(found, key=rate, default=None)


def _judge(run: LinkRun, key: str, base: str, goal: float, what: str) -> Verdict:
    series = run.find(key)
    ratio = rate(series) / rate(run.find(base))
    measured = f"{_x(ratio)}: {_num(rate(series))} vs {_num(rate(run.find(base)))} samples/s"
    return Verdict(what, measured, ratio >= goal)


def link_verdicts(run: LinkRun) -> list[Verdict]:
    """The issue's link targets, judged on the Gluon drop-in (float32 in hand)."""
    gluon = "segserve-gluon-uint8"
    judged: list[tuple[str, str, float, str]] = [
        (f"1gbit-{gluon}-jpeg", f"1gbit-{gluon}-raw", 2.5, "1 Gbit/s: `jpeg` >= 2.5x `raw`"),
        (
            f"1gbit-{gluon}-jpeg",
            "1gbit-webdataset-2w",
            2.5,
            "1 Gbit/s: `jpeg` >= 2.5x WebDataset with 2 workers",
        ),
        (
            f"1gbit-{gluon}-lossless",
            f"1gbit-{gluon}-raw",
            1.4,
            "1 Gbit/s: `lossless` >= 1.4x `raw`",
        ),
        (
            f"loopback-{gluon}-raw",
            "in process-chapter-0w",
            15.0,
            "loopback: the Gluon drop-in (`raw`) >= 15x the chapter's 0-worker pipeline",
        ),
    ]
    for stream in run.series:  # measured on the links the preset says
        if stream.link == "loopback" and stream.mode == "stream":
            what = f"loopback: epoch stream (`{stream.encoding}`) >= 0.9x the `BatchLoader`"
            loader = f"loopback-segserve-uint8-{stream.encoding}"
            judged.append((stream.key, loader, 0.9, what))
    return [_judge(run, *item) for item in judged]


def choices(run: LinkRun) -> list[str]:
    """Per link and delivery, which encoding was fastest, and by how much over ``raw``."""
    lines = []
    for link in dict.fromkeys(s.link for s in run.series if s.pipeline == "segserve"):
        for mode in ("gluon-uint8", "uint8"):
            top = best_encoding(run, link, mode)
            if top is None:
                continue
            raw = run.find(f"{link}-segserve-{mode}-raw")
            margin = rate(top) / rate(raw)
            lines.append(
                f"- {LINK_TITLES.get(link, link)}, {DELIVERS[('segserve', mode)]}: "
                f"`{top.encoding}` fastest ({_num(rate(top))} samples/s, {_x(margin)} `raw`)"
            )
    return lines


def link_section(run: LinkRun) -> list[str]:
    """The link phase's tables (or why it did not run)."""
    lines = ["", "## Over links: segserve's encodings against WebDataset", ""]
    if not run.series:
        return [*lines, f"{run.status.capitalize()}.", *[f"\n{note}" for note in run.notes]]
    load = ", ".join(f"{x:.1f}" for x in run.load_before)
    after = ", ".join(f"{x:.1f}" for x in run.load_after)
    rounds = max(len(s.epochs) for s in run.series)
    warm_up = " after an uncounted warm-up epoch of each configuration" if run.warm_up else ""
    lines += [
        f"Run of {run.started}, {run.wall_seconds / 60:.1f} min; {run.status}. Load average "
        f"(1, 5, 15 min) {load} before and {after} after: the machine was shared, so only "
        f"ratios within this phase compare. Data: `{run.dataset}`, natural photographs "
        "(`bench/natural.py`: VOC sizes, about 100 KB and 4.6 bits per pixel per JPEG). "
        f"Crop 320 x 480, batch 64, train split, {rounds} round(s) in rotating order per link"
        f"{warm_up}, an epoch of {run.batches_per_epoch or 'all'} batches. "
        f"{passes(run.min_seconds)}; "
        "samples/s are medians over the rounds, from asking for the first batch to holding "
        "the last (WebDataset's include starting its DataLoader workers). Servers: one "
        "`segserve serve` process "
        "(1 uvicorn worker) and nginx serving the shards as static files; on emulated links "
        "both run in a network namespace of the benchmark's own, behind a veth pair whose "
        "ends are each shaped by `tc tbf` to the rate; the trainer runs in the root namespace. "
        "*vs raw*: against segserve `raw` of the same delivery on the same link. *KB/sample on "
        "the wire*: bytes the trainer's end of the veth received per sample delivered "
        "(headers, TCP and retransmissions included; for WebDataset also the samples the "
        "crop filter drops after reading them; with epochs cut short, also what the loaders "
        "had read ahead when the epoch stopped); on loopback the payload sent (bodies, shard "
        "files). CPU: user + system seconds of the serving processes (segserve, or nginx "
        "and its workers) and of the trainer's process with its children (DataLoader "
        "workers, curl), per sample delivered.",
        "",
        *_rows(["link", "shaped to", "one TCP stream measured"], _link_rows(run)),
        "",
        "Targets (ratios of this run):",
        "",
        *_rows(["target", "measured", ""], _verdict_rows(run)),
        "",
        "Fastest encoding per link:",
        "",
        *choices(run),
    ]
    for link in dict.fromkeys(s.link for s in run.series):
        rows = [_row(run, s) for s in run.series if s.link == link]
        lines += ["", f"### {LINK_TITLES.get(link, link)}", "", *_rows(HEAD, rows)]
    return lines + [f"\n{note}" for note in run.notes]


def _gbits(bits: float) -> str:
    return f"{bits / 1e9:.2f} Gbit/s" if bits else "-"


def _link_rows(run: LinkRun) -> list[list[str]]:
    return [
        [LINK_TITLES.get(i.name, i.name), _gbits(i.rate_bits), _gbits(i.tcp_bits)]
        for i in run.links
    ]


def _verdict_rows(run: LinkRun) -> list[list[str]]:
    return [[v.target, v.measured, "met" if v.met else "**missed**"] for v in link_verdicts(run)]
