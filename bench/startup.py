"""Start-up: cold cache builds, cold and warm server starts, warm ``open_dataset``, memory."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench.presets import Preset
from bench.protocol import Probe
from bench.results import Startup
from bench.server import Server
from bench.workspace import Workspace, cache_bytes, prepare, say

COLD_TIMEOUT = 3600.0
WARM_TIMEOUT = 300.0
# Deliveries served before memory is read: the heaviest per request is float32.
EXERCISE_MODES = ("uint8", "gluon-float32")


def cold_builds(space: Workspace, preset: Preset, root: Path, warm_cache: Path) -> list[float]:
    """``segserve prepare`` on empty caches; the first one builds ``warm_cache`` for later."""
    seconds: list[float] = []
    for i in range(preset.cold_builds):
        cache = warm_cache if i == 0 else space.fresh_cache(f"cold-{i}")
        say(f"cold build {i + 1}/{preset.cold_builds}")
        seconds.append(prepare(root, cache, space.log("prepare")))
        if cache != warm_cache:
            shutil.rmtree(cache, ignore_errors=True)
    return seconds


def cold_server(space: Workspace, root: Path) -> float:
    """Seconds from starting a 1-worker server on an empty cache to ``/readyz`` 200."""
    say("cold server start")
    cache = space.fresh_cache("cold-server")
    try:
        with Server(root, cache, 1, space.log("server-cold")) as server:
            return server.wait_ready(COLD_TIMEOUT)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def exercise(client: Probe, url: str, preset: Preset) -> None:
    """One epoch of each of ``EXERCISE_MODES`` (untimed), so the server's memory is in use."""
    for mode in EXERCISE_MODES:
        client.call("epoch", url=url, mode=mode, epoch=0, **preset.fields)
    client.call("close")


def warm_starts(
    space: Workspace, preset: Preset, root: Path, cache: Path, client: Probe, startup: Startup
) -> None:
    """Servers started on the built cache, per worker count; memory read on the last round."""
    for round_ in range(preset.warm_starts):
        for workers in preset.server_workers:
            say(f"warm start {round_ + 1}/{preset.warm_starts}, {workers} worker(s)")
            with Server(root, cache, workers, space.log(f"server-warm-{workers}w")) as server:
                ready = server.wait_ready(WARM_TIMEOUT)
                startup.warm_ready.setdefault(str(workers), []).append(ready)
                first = client.call("latency", url=server.url, count=1, **preset.fields)
                startup.first_batch.setdefault(str(workers), []).append(first["seconds"][0])
                if round_ == preset.warm_starts - 1:
                    exercise(client, server.url, preset)
                    startup.memory[str(workers)] = server.memory()


def measure_startup(
    space: Workspace, preset: Preset, root: Path, cache: Path, client: Probe
) -> Startup:
    """Every start-up figure; leaves the built cache in ``cache``."""
    startup = Startup()
    startup.cold_build = cold_builds(space, preset, root, cache)
    startup.cold_ready = [cold_server(space, root)]
    warm_starts(space, preset, root, cache, client, startup)
    say("open_dataset on the warm cache, in process")
    answer = client.call("open_dataset", root=str(root), cache_dir=str(cache), repeats=5)
    startup.open_dataset = list(answer["seconds"])
    startup.cache_bytes = cache_bytes(cache)
    return startup
