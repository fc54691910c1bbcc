"""The link phase: segserve, WebDataset and the chapter over loopback and emulated links.

On a VOC-layout set of natural photographs (:mod:`bench.natural`), side by side:

- segserve (one ``segserve serve`` process, 1 uvicorn worker), every transport
  encoding both sides support, as the Gluon drop-in (``gluon-uint8``: float32
  NCHW ``mx.nd`` batches in hand) and as uint8 batches (``uint8``:
  ``BatchLoader``), as the preset's ``link_modes`` say, and on the links of
  ``link_stream_links`` also as the epoch stream (``stream``: uint8 batches);
- WebDataset: tar shards of the original files (:mod:`bench.shards`) served
  by nginx as static files, read by :mod:`bench.wds_probe` with 0 and 2
  DataLoader workers;
- the chapter's own pipeline in process (:mod:`bench.chapter_probe`), once:
  it uses no network.

First over loopback (servers on 127.0.0.1), then with the servers in a
namespace of their own behind a veth pair shaped to each rate
(:mod:`bench.netns`). Per link the configurations run once per round in
rotating order: epochs of the preset's ``link_batches`` batches (when 0, each
pipeline's whole epoch; the same for every pipeline, the chapter's included),
one after the other until ``min_seconds`` have passed, after one uncounted
warm-up epoch of each (``link_warm_up``). Each round records the CPU seconds of
the serving processes (segserve or nginx) and of the trainer's (its probe and
the probe's children: DataLoader workers, curl), and on emulated links the
bytes the trainer's end received.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench import netns
from bench.memory import tree_cpu_seconds
from bench.natural import ensure_natural, missing_reason
from bench.netns import LOOPBACK, Link
from bench.nginx import Nginx, find_nginx, static_config
from bench.presets import Preset
from bench.protocol import Message, Probe, ProbeError
from bench.results import LinkInfo, LinkRun, LinkSeries
from bench.server import Server, ServerError
from bench.shards import Shards, write_shards
from bench.stats import Epoch, measure_epochs
from bench.throughput import READY_TIMEOUT, epoch_of
from bench.workspace import BenchError, Workspace, say

ENCODINGS = ("raw", "lossless", "jpeg")
IN_PROCESS = "in process"
_NGINX_READY = 30.0


def webdataset_missing() -> str | None:
    """Why the WebDataset rows cannot be measured here, or None."""
    for module in ("torch", "webdataset"):
        if importlib.util.find_spec(module) is None:
            return f"not measured: {module} is not installed"
    return None


@dataclass
class LinkConfig:
    """A series and how to run one more epoch of it (given the round number)."""

    series: LinkSeries
    run: Callable[[int], Message]
    serving_pid: int | None
    trainer_pid: int


@dataclass
class Trainers:
    """The measuring processes, alive for the whole phase."""

    client: Probe
    webdataset: dict[int, Probe]
    chapter: Probe | None


def _epoch_with_costs(
    config: LinkConfig, link: Link, first: int, step: int, min_seconds: float
) -> None:
    """Epochs ``first``, ``first + step``, ... of ``config`` for at least ``min_seconds``
    (one pass, :func:`bench.stats.measure_epochs`), with the CPU and the bytes they took."""
    serving = config.serving_pid
    before = (tree_cpu_seconds(serving) if serving else 0.0, tree_cpu_seconds(config.trainer_pid))
    received = link.trainer_rx_bytes()
    series = config.series
    run = partial(_timed, config)
    series.epochs.append(measure_epochs(run, first, step, min_seconds))
    series.server_cpu.append((tree_cpu_seconds(serving) if serving else 0.0) - before[0])
    series.client_cpu.append(tree_cpu_seconds(config.trainer_pid) - before[1])
    series.wire_bytes.append(link.trainer_rx_bytes() - received)


def _timed(config: LinkConfig, number: int) -> Epoch:
    return epoch_of(config.run(number))


def run_link_rounds(
    configs: list[LinkConfig],
    link: Link,
    rounds: int,
    warm_up: bool = False,
    min_seconds: float = 0.0,
) -> None:
    """``rounds`` passes of every configuration (epochs for at least ``min_seconds``
    each), the order rotating by one each round; with ``warm_up``, first one epoch of
    each that is not counted (epoch 0; the rounds ask for 1, 2, ...): a trainer
    process's first epoch of a mode also pays for its first imports, connections and
    allocations, which the start-up phase measures, and with 3 rounds a cold one
    would decide the median."""
    if warm_up:
        for config in configs:
            say(f"link {link.name}, warm-up: {config.series.key}")
            config.run(0)
    for round_ in range(rounds):
        shift = round_ % len(configs)
        for config in configs[shift:] + configs[:shift]:
            say(f"link {link.name}, round {round_ + 1}/{rounds}: {config.series.key}")
            # epochs 1 + round_, 1 + round_ + rounds, ...: none another pass's or the warm-up's
            _epoch_with_costs(config, link, 1 + round_, rounds, min_seconds)


def segserve_configs(
    trainers: Trainers, server: Server, link: Link, preset: Preset
) -> list[LinkConfig]:
    """Every mode and encoding of segserve from ``server``."""
    configs = []
    asked = {"url": server.url, "encodings": ENCODINGS, **preset.fields}
    for encoding in trainers.client.call("encodings", **asked)["encodings"]:
        stream = ("stream",) if link.name in preset.link_stream_links else ()
        for mode in (*preset.link_modes, *stream):
            fields = {"url": server.url, "mode": mode, "encoding": encoding, **preset.fields}
            body = int(trainers.client.call("body_bytes", **fields)["bytes"])
            series = LinkSeries(link.name, "segserve", mode, encoding, server.workers)
            series.body_bytes = body / preset.batch_size
            run = partial(_segserve_epoch, trainers.client, fields, preset.link_batches)
            configs.append(LinkConfig(series, run, server.process.pid, trainers.client.pid))
    return configs


def _segserve_epoch(client: Probe, fields: Message, limit: int, round_: int) -> Message:
    return client.call("epoch", epoch=round_, max_batches=limit, **fields)


def webdataset_configs(
    trainers: Trainers, nginx: Nginx, shards: Shards, link: Link, preset: Preset
) -> list[LinkConfig]:
    """WebDataset with each worker count, reading the shards from ``nginx``."""
    configs = []
    for workers, probe in trainers.webdataset.items():
        series = LinkSeries(link.name, "webdataset", "", "", workers)
        series.body_bytes = shards.nbytes / max(1, shards.samples)
        fields = {"urls": shards.urls(nginx.url), "max_batches": preset.link_batches}
        run = partial(_webdataset_epoch, probe, fields)
        configs.append(LinkConfig(series, run, nginx.process.pid, probe.pid))
    return configs


def _webdataset_epoch(probe: Probe, fields: Message, round_: int) -> Message:
    return probe.call("epoch", epoch=round_, **fields)


@contextmanager
def servers(
    space: Workspace, root: Path, cache: Path, shards: Shards, link: Link, nginx_binary: str
) -> Iterator[tuple[Server, Nginx]]:
    """segserve and nginx (serving the shards) where ``link`` says, both ready."""
    place = "netns" if link.netns else "loopback"
    with ExitStack() as stack:
        server = stack.enter_context(Server(root, cache, 1, space.log(f"link-{place}"), link))
        server.wait_ready(READY_TIMEOUT)  # the first one builds the decoded cache
        render = partial(static_config, shards.folder)
        prefix = space.root / "nginx" / f"shards-{place}"
        nginx = Nginx(nginx_binary, render, prefix, space.log(f"nginx-shards-{place}"), link)
        stack.enter_context(nginx)
        nginx.wait_ready(_NGINX_READY)
        yield server, nginx


def start_trainers(stack: ExitStack, space: Workspace, preset: Preset, root: Path) -> Trainers:
    """The client probe, a WebDataset probe per worker count (when torch is here), and the
    chapter's pipeline (when the preset asks for it)."""
    client = stack.enter_context(Probe("bench.client_probe", [], space.log("link-client")))
    crop = ["--batch-size", str(preset.batch_size), "--height", str(preset.height)]
    crop += ["--width", str(preset.width)]
    webdataset = {}
    if webdataset_missing() is None:
        for workers in preset.link_wds_workers:
            arguments = ["--workers", str(workers), *crop]
            log = space.log(f"link-webdataset-{workers}w")
            webdataset[workers] = stack.enter_context(Probe("bench.wds_probe", arguments, log))
    chapter = None
    if preset.link_chapter:
        say("link: the chapter's pipeline on the natural set, 0 workers: loading")
        arguments = [str(root), "--workers", "0", *crop]
        chapter = Probe("bench.chapter_probe", arguments, space.log("link-chapter"))
        stack.enter_context(chapter)
    return Trainers(client, webdataset, chapter)


def chapter_config(trainers: Trainers, max_batches: int) -> list[LinkConfig]:
    """The chapter's pipeline, in process (no server, no network), ``max_batches`` per
    epoch (0: all)."""
    if trainers.chapter is None:
        return []
    series = LinkSeries(IN_PROCESS, "chapter", "", "", 0)
    probe = trainers.chapter
    run = partial(_chapter_epoch, probe, max_batches)
    return [LinkConfig(series, run, None, probe.pid)]


def _chapter_epoch(probe: Probe, max_batches: int, _round: int) -> Message:
    return probe.call("epoch", max_batches=max_batches)


def measure_place(
    space: Workspace,
    preset: Preset,
    paths: tuple[Path, Path, Shards],
    trainers: Trainers,
    place: Link,
    links: Sequence[Callable[[], Link]],
    run: LinkRun,
) -> None:
    """Servers at ``place`` (loopback, or the namespace), then each link there in turn
    (``links`` make each: shaping the pair, for emulated links)."""
    root, cache, shards = paths
    binary = find_nginx()
    if binary is None:
        raise netns.LinkError("nginx is not installed")
    with servers(space, root, cache, shards, place, binary) as (server, nginx):
        for make in links:
            link = make()
            tcp = netns.tcp_throughput(link)
            say(f"link {link.name}: one TCP stream {tcp / 1e9:.2f} Gbit/s")
            run.links.append(LinkInfo(link.name, link.rate_bits, tcp))
            configs = segserve_configs(trainers, server, link, preset)
            configs += webdataset_configs(trainers, nginx, shards, link, preset)
            if link is LOOPBACK:
                configs += chapter_config(trainers, preset.link_batches)
            rounds, warm_up = preset.link_rounds, preset.link_warm_up
            run_link_rounds(configs, link, rounds, warm_up, preset.min_seconds)
            run.series += [config.series for config in configs]
        trainers.client.call("close")


def measure_link(space: Workspace, preset: Preset) -> LinkRun:
    """The link phase (see the module docstring); a run that says why when it cannot run."""
    started = time.perf_counter()
    run = LinkRun(
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_before=list(os.getloadavg()),
    )
    missing = missing_reason()
    if missing:
        run.status = f"not measured: {missing}"
        return run
    say(f"link: natural data set, {preset.link_train} train + {preset.link_val} val")
    root = ensure_natural(space.data, train=preset.link_train, val=preset.link_val)
    run.dataset = root.name
    run.batches_per_epoch = preset.link_batches
    run.warm_up = preset.link_warm_up
    run.min_seconds = preset.min_seconds
    shards = write_shards(root, "train", space.data / f"shards-{root.name}")
    cache = space.fresh_cache("link")
    wds = webdataset_missing()
    if wds:
        run.notes.append(f"WebDataset: {wds}")
    emulated = netns.unavailable()
    paths = (root, cache, shards)
    try:
        with ExitStack() as stack:
            trainers = start_trainers(stack, space, preset, root)
            measure_place(space, preset, paths, trainers, LOOPBACK, [lambda: LOOPBACK], run)
            if emulated is None:
                place = stack.enter_context(netns.namespace())
                shaped = [partial(netns.shape, rate) for rate in preset.link_rates]
                measure_place(space, preset, paths, trainers, place, shaped, run)
            else:
                run.notes.append(f"emulated links skipped: {emulated}")
        run.status = "measured" if emulated is None else "measured on loopback only"
    except (netns.LinkError, BenchError, ProbeError, ServerError) as error:
        say(f"link: failed: {error}")
        run.status = f"failed: {error}"
    run.load_after = list(os.getloadavg())
    run.wall_seconds = round(time.perf_counter() - started, 1)
    say(f"link: phase done in {run.wall_seconds:.0f} s")
    return run
