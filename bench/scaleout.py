"""The scale-out phase: 1, 2 and 4 replicas, reached by the client directly and through nginx.

Each replica is a ``segserve serve`` process with 1 uvicorn worker, all on the
run's warm decoded cache. For every replica count the same client probe runs
an epoch (a) given every replica's URL, over which it spreads its prefetched
batches (what it does with a headless Service's addresses), and (b) through
one nginx listing them all, configured from ``deploy/nginx.conf`` as in
:mod:`bench.nginx`. Epochs interleave round by round, as in
:mod:`bench.throughput`.

First, replicas are started one at a time on the warm cache and timed to
``/readyz`` 200 (with 1 and with 2 workers): how soon a new pod serves.
Besides samples/s, each epoch records the CPU seconds the replicas (and nginx)
spent on it, read from ``/proc``: samples per replica CPU-second is the
per-core figure that the README's sizing guide multiplies out. On this
machine replicas, nginx and the client share its CPUs, so the aggregate
cannot grow past what those CPUs give; scaling over several machines is
computed from the per-core figure, not measured here.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench.memory import descendants
from bench.nginx import CONFIG, NGINX_READY_TIMEOUT, NOT_INSTALLED, Nginx, find_nginx, render_config
from bench.presets import Preset
from bench.protocol import Probe
from bench.results import ScaleoutRun, ScaleSeries
from bench.server import Server
from bench.stats import Epoch
from bench.throughput import READY_TIMEOUT
from bench.workspace import Workspace, prepare, say

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by ``pids`` and their descendants."""
    total = 0
    for pid in {p for root in pids for p in (root, *descendants(root))}:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


@dataclass
class _Config:
    """One series and where its epochs go: the URLs the client gets, the processes to meter."""

    series: ScaleSeries
    urls: list[str]
    servers: list[int]
    proxy: list[int]


def _epoch(client: Probe, config: _Config, preset: Preset, round_: int) -> None:
    """One epoch of ``config``, with the CPU its replicas and proxy spent on it."""
    server_before, proxy_before = cpu_seconds(config.servers), cpu_seconds(config.proxy)
    answer = client.call(
        "epoch", url=",".join(config.urls), mode=config.series.mode, epoch=round_, **preset.fields
    )
    series = config.series
    series.epochs.append(Epoch(int(answer["samples"]), [float(s) for s in answer["stamps"]]))
    series.server_cpu.append(cpu_seconds(config.servers) - server_before)
    series.proxy_cpu.append(cpu_seconds(config.proxy) - proxy_before)


def _configs(
    stack: ExitStack, space: Workspace, preset: Preset, replicas: list[Server], client: Probe
) -> list[_Config]:
    """Direct and (when nginx is installed) through-nginx series for each replica count."""
    binary = find_nginx()
    template = (Path(__file__).resolve().parent.parent / CONFIG).read_text(encoding="utf-8")
    configs: list[_Config] = []
    for count in preset.scaleout_replicas:
        chosen = replicas[:count]
        urls, pids = [r.url for r in chosen], [r.process.pid for r in chosen]
        routes: list[tuple[str, list[str], list[int]]] = [("direct", urls, [])]
        if binary is not None:
            upstreams = [f"127.0.0.1:{r.port}" for r in chosen]
            prefix = space.root / "nginx" / f"scaleout-{count}r"
            log = space.log(f"scaleout-nginx-{count}r")
            render = partial(render_config, template, upstreams)
            proxy = stack.enter_context(Nginx(binary, render, prefix, log))
            proxy.wait_ready(NGINX_READY_TIMEOUT)
            routes.append(("nginx", [proxy.url], [proxy.process.pid]))
        for route, route_urls, proxy_pids in routes:
            for mode in preset.scaleout_modes:
                nbytes = client.call("batch_bytes", url=route_urls[0], mode=mode, **preset.fields)
                per_sample = int(nbytes["bytes"]) / preset.batch_size
                series = ScaleSeries(route, count, mode, sample_bytes=per_sample)
                configs.append(_Config(series, route_urls, pids, proxy_pids))
    return configs


def warm_starts(
    space: Workspace, preset: Preset, root: Path, cache: Path, run: ScaleoutRun
) -> None:
    """Replicas started one at a time on the warm cache, timed (and metered) to ``/readyz``."""
    for round_ in range(preset.warm_starts):
        for workers in preset.server_workers:
            say(f"scale-out: warm start {round_ + 1}/{preset.warm_starts}, {workers} worker(s)")
            log = space.log(f"scaleout-warm-{workers}w")
            with Server(root, cache, workers, log) as server:
                run.warm_ready.setdefault(str(workers), []).append(server.wait_ready(READY_TIMEOUT))
                run.warm_cpu.setdefault(str(workers), []).append(cpu_seconds([server.process.pid]))


def measure_scaleout(space: Workspace, preset: Preset) -> ScaleoutRun:
    """The scale-out phase (see the module docstring), on a cache of its own."""
    run = ScaleoutRun(
        status="measured",
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_before=list(os.getloadavg()),
        cpus=len(os.sched_getaffinity(0)),
    )
    if find_nginx() is None:
        run.notes.append(f"nginx {NOT_INSTALLED.removeprefix('not measured: ')}: direct only")
    started = time.perf_counter()
    root = space.dataset(preset.train, preset.val, preset.seed)
    cache = space.fresh_cache("scaleout")
    prepare(root, cache, space.log("scaleout-prepare"))
    warm_starts(space, preset, root, cache, run)
    with (
        ExitStack() as stack,
        Probe("bench.client_probe", [], space.log("scaleout-client")) as client,
    ):
        most = max(preset.scaleout_replicas)
        say(f"scale-out: {most} replicas, 1 uvicorn worker each")
        replicas = [
            stack.enter_context(Server(root, cache, 1, space.log(f"scaleout-replica-{i + 1}")))
            for i in range(most)
        ]
        for replica in replicas:
            replica.wait_ready(READY_TIMEOUT)
        configs = _configs(stack, space, preset, replicas, client)
        for round_ in range(preset.rounds):
            shift = round_ % len(configs)
            for config in configs[shift:] + configs[:shift]:
                say(f"scale-out round {round_ + 1}/{preset.rounds}: {config.series.key}")
                _epoch(client, config, preset, round_)
        client.call("close")
        run.series = [config.series for config in configs]
    run.load_after = list(os.getloadavg())
    run.wall_seconds = round(time.perf_counter() - started, 1)
    say(f"scale-out: phase done in {run.wall_seconds:.0f} s")
    return run
