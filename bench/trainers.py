"""The many-trainers phase: 1, 4 and 16 trainer processes on one server, and on two replicas.

Each trainer (:mod:`bench.trainer_probe`) runs ``SegClient.iter_epoch`` (uint8,
the preset's batch and crop) for the same bounded time, all started at once.
Per configuration: the trainers' aggregate samples/s, the slowest and the
fastest trainer, p50 and p99 of the interval between batches a trainer holds
(what a training step waits for, prefetch included), the exceptions that
ended trainers, the server's admission refusals and deepest queue (from
``/metrics``), and the peak memory of the server processes (sampled while the
trainers run). The servers run with default settings, as a new user's would.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench.presets import Preset
from bench.server import Server
from bench.stats import percentile
from bench.workspace import Workspace, say

READY_SECONDS: Final = 120.0
SAMPLE_SECONDS: Final = 0.25


@dataclass
class FleetRun:
    """One configuration: ``trainers`` processes on ``replicas`` servers for ``seconds``."""

    replicas: int
    trainers: int
    seconds: float
    rates: list[float] = field(default_factory=list)  # samples/s of each trainer
    interval_p50_ms: float = 0.0
    interval_p99_ms: float = 0.0
    errors: list[str] = field(default_factory=list)
    refused: dict[str, float] = field(default_factory=dict)
    queue_depth_peak: float = 0.0
    server_rss_peak_mib: float = 0.0
    server_anon_peak_mib: float = 0.0
    load_after: list[float] = field(default_factory=list)

    @property
    def aggregate(self) -> float:
        """Samples per second of all trainers together."""
        return sum(self.rates)


@dataclass
class Sampler:
    """Polls the servers' memory and queue depth in a thread while the trainers run."""

    servers: Sequence[Server]
    rss: float = 0.0
    anon: float = 0.0
    depth: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            members = [m for s in self.servers for m in s.memory()]
            self.rss = max(self.rss, sum(m.rss for m in members) / 2**20)
            self.anon = max(self.anon, sum(m.anon for m in members) / 2**20)
            depth = sum(metric(s, "segserve_admission_queue_depth") for s in self.servers)
            self.depth = max(self.depth, depth)

    @contextmanager
    def running(self) -> Iterator[None]:
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join()


def metrics_text(server: Server) -> str:
    """The server's ``/metrics`` exposition."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        return connection.getresponse().read().decode()
    finally:
        connection.close()


def metric(server: Server, name: str, labels: str = "") -> float:
    """The sum of the samples of ``name`` (with ``labels`` in their label set) on ``server``."""
    total = 0.0
    for line in metrics_text(server).splitlines():
        if line.startswith(name) and (not labels or labels in line):
            head, _, value = line.rpartition(" ")
            if head.split("{")[0] == name:
                total += float(value)
    return total


def refusals(servers: Sequence[Server]) -> dict[str, float]:
    """Admission refusals by reason, summed over the servers."""
    reasons = ("queue-full", "timeout", "draining")
    name = "segserve_admission_refused_total"
    return {r: sum(metric(s, name, f'reason="{r}"') for s in servers) for r in reasons}


Trainer = subprocess.Popen[str]


def start_trainers(
    urls: str, count: int, preset: Preset, seconds: float, log: Path
) -> list[Trainer]:
    """``count`` trainer processes, each having said ``ready``."""
    shape = [str(preset.trainer_batch_size), str(preset.height), str(preset.width)]
    processes: list[Trainer] = []
    with log.open("ab") as errors:
        for seed in range(count):
            command = [sys.executable, "-m", "bench.trainer_probe", urls, str(seconds), str(seed)]
            processes.append(
                subprocess.Popen(
                    [*command, *shape],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    text=True,
                )
            )
    for process in processes:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], READY_SECONDS)
        if not ready or process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"a trainer did not start; see {log}")
    return processes


def run_fleet(servers: Sequence[Server], count: int, preset: Preset, log: Path) -> FleetRun:
    """``count`` trainers against ``servers`` for the preset's time."""
    seconds = preset.trainer_seconds
    urls = ",".join(s.url for s in servers)
    before = refusals(servers)
    processes = start_trainers(urls, count, preset, seconds, log)
    sampler = Sampler(servers)
    with sampler.running():
        for process in processes:  # all start at (nearly) the same moment
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = [json.loads(p.communicate(timeout=seconds + READY_SECONDS)[0]) for p in processes]
    after = refusals(servers)
    intervals = [i for r in reports for i in r["intervals"]]
    return FleetRun(
        replicas=len(servers),
        trainers=count,
        seconds=seconds,
        rates=[r["samples"] / r["seconds"] if r["seconds"] else 0.0 for r in reports],
        interval_p50_ms=round(percentile(intervals, 50) * 1000, 1),
        interval_p99_ms=round(percentile(intervals, 99) * 1000, 1),
        errors=[r["error"] for r in reports if r["error"]],
        refused={reason: after[reason] - before[reason] for reason in after},
        queue_depth_peak=sampler.depth,
        server_rss_peak_mib=round(sampler.rss, 1),
        server_anon_peak_mib=round(sampler.anon, 1),
        load_after=[round(x, 2) for x in os.getloadavg()],
    )


def measure_trainers(space: Workspace, preset: Preset, root: Path) -> list[FleetRun]:
    """Every (replicas, trainers) configuration of the preset, on warm caches."""
    runs = []
    for replicas in preset.trainer_replicas:
        with ExitStack() as stack:
            servers = []
            for r in range(replicas):
                cache = space.caches / f"trainers-{r}"  # kept: warm after the first build
                log = space.log(f"trainers-server-{r}")
                servers.append(stack.enter_context(Server(root, cache, 1, log)))
            for server in servers:
                server.wait_ready(READY_SECONDS * 5)
            for count in preset.trainer_counts:
                say(f"trainers: {count} on {replicas} replica(s), {preset.trainer_seconds:g} s")
                run = run_fleet(servers, count, preset, space.log("trainers"))
                say(
                    f"trainers: {run.aggregate:.0f} samples/s together, "
                    f"slowest {min(run.rates):.0f}, fastest {max(run.rates):.0f}, "
                    f"{len(run.errors)} died"
                )
                runs.append(run)
                time.sleep(1.0)  # let the load of one configuration settle before the next
    return runs
