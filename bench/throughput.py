"""Throughput: the chapter's pipeline and segserve's deliveries, epoch by epoch, interleaved.

Every configuration runs once per round: whole epochs until the preset's
``min_seconds`` have passed (:func:`bench.stats.measure_epochs`); the order
rotates from round to round, so that load drifting on a shared machine falls on
all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from bench.presets import Preset
from bench.protocol import Message, Probe
from bench.server import Server
from bench.stats import Epoch, Series, measure_epochs
from bench.workspace import Workspace, say

SEGSERVE_MODES = ("uint8", "stream", "gluon-uint8", "gluon-float32")
READY_TIMEOUT = 300.0


@dataclass
class Config:
    """A series and how to run one more epoch of it (given the round number)."""

    series: Series
    run: Callable[[int], Epoch]


def epoch_of(answer: Message) -> Epoch:
    """The timed pass a probe's ``epoch`` command answered."""
    return Epoch(int(answer["samples"]), [float(s) for s in answer["stamps"]])


def chapter_config(probe: Probe, workers: int) -> Config:
    """The chapter's DataLoader with ``workers`` workers, in its probe process."""
    series = Series("chapter", workers, "", [])
    return Config(series, lambda _round: epoch_of(probe.call("epoch")))


def delivery_config(
    client: Probe,
    urls: list[str],
    mode: str,
    preset: Preset,
    *,
    kind: str,
    workers: int,
    connections: int = 1,
) -> Config:
    """segserve delivery ``mode`` from the server(s) at ``urls``, through the client probe
    (an epoch stream over ``connections`` connections)."""
    fields = {"url": ",".join(urls), "mode": mode, "connections": connections, **preset.fields}
    nbytes = int(client.call("batch_bytes", **fields)["bytes"])
    series = Series(kind, workers, mode, [], batch_bytes=nbytes)

    def run(round_: int) -> Epoch:
        return epoch_of(client.call("epoch", epoch=round_, **fields))

    return Config(series, run)


def segserve_config(client: Probe, server: Server, mode: str, preset: Preset) -> Config:
    """segserve delivery ``mode`` from ``server``, through the client probe; an epoch
    stream opens one connection per server worker process, as docs/API.md advises."""
    workers = server.workers
    connections = workers if mode == "stream" else 1
    return delivery_config(
        client,
        [server.url],
        mode,
        preset,
        kind="segserve",
        workers=workers,
        connections=connections,
    )


def start_chapters(
    stack: ExitStack, space: Workspace, preset: Preset, root: Path
) -> tuple[list[Config], list[Message]]:
    """One chapter process per worker count, each loading its datasets (one at a time);
    the configurations and the processes' hellos (their load times)."""
    configs, hellos = [], []
    for workers in preset.chapter_workers:
        say(f"chapter pipeline, {workers} DataLoader worker(s): loading")
        arguments = [str(root), "--workers", str(workers), "--batch-size", str(preset.batch_size)]
        arguments += ["--height", str(preset.height), "--width", str(preset.width)]
        probe = Probe("bench.chapter_probe", arguments, space.log(f"chapter-{workers}w"))
        stack.enter_context(probe)
        configs.append(chapter_config(probe, workers))
        hellos.append({"workers": workers, **probe.hello})
    return configs, hellos


def start_servers(
    stack: ExitStack, space: Workspace, preset: Preset, root: Path, cache: Path
) -> list[Server]:
    """One warm server per worker count, ready."""
    servers = []
    for workers in preset.server_workers:
        server = stack.enter_context(Server(root, cache, workers, space.log(f"server-{workers}w")))
        server.wait_ready(READY_TIMEOUT)
        servers.append(server)
    return servers


def run_rounds(configs: list[Config], rounds: int, min_seconds: float = 0.0) -> None:
    """``rounds`` passes of every configuration, the order rotating by one each round; a
    pass is whole epochs until ``min_seconds`` have passed (epochs ``round``,
    ``round + rounds``, ...: no two passes ask for the same one)."""
    for round_ in range(rounds):
        shift = round_ % len(configs)
        for config in configs[shift:] + configs[:shift]:
            say(f"round {round_ + 1}/{rounds}: {config.series.key}")
            pass_ = measure_epochs(config.run, round_, rounds, min_seconds)
            config.series.epochs.append(pass_)


def measure_throughput(
    space: Workspace, preset: Preset, root: Path, cache: Path, client: Probe
) -> tuple[list[Series], list[Message]]:
    """Every throughput series, and the chapter processes' hellos (their load times)."""
    with ExitStack() as stack:
        chapters, hellos = start_chapters(stack, space, preset, root)
        servers = start_servers(stack, space, preset, root, cache)
        configs = list(chapters)
        for server in servers:
            configs += [segserve_config(client, server, mode, preset) for mode in SEGSERVE_MODES]
        run_rounds(configs, preset.rounds, preset.min_seconds)
        client.call("close")
    return [config.series for config in configs], hellos
