"""Growth: time per batch on a dataset and on one ``factor`` times its size.

Both servers run side by side (one worker each, built caches) and are asked
for batches in alternating chunks, one request at a time, so the two sizes
see the same machine load.
"""

from __future__ import annotations

from contextlib import ExitStack

from bench.presets import Preset
from bench.protocol import Probe
from bench.results import GrowthSize
from bench.server import Server
from bench.workspace import Workspace, cache_bytes, prepare, say

CHUNKS = 4
READY_TIMEOUT = 300.0


def _sizes(preset: Preset) -> list[tuple[str, int, int]]:
    factor = preset.growth_factor
    return [
        ("1x", preset.growth_train, preset.growth_val),
        (f"{factor}x", factor * preset.growth_train, factor * preset.growth_val),
    ]


def _start(stack: ExitStack, space: Workspace, preset: Preset) -> list[tuple[GrowthSize, Server]]:
    """Each size's dataset, a cache built for it and a ready 1-worker server."""
    started = []
    for label, train, val in _sizes(preset):
        root = space.dataset(train, val, preset.seed)
        cache = space.fresh_cache(f"growth-{label}")
        say(f"growth {label}: building the cache")
        prepare(root, cache, space.log(f"prepare-growth-{label}"))
        server = stack.enter_context(Server(root, cache, 1, space.log(f"server-growth-{label}")))
        server.wait_ready(READY_TIMEOUT)
        started.append((GrowthSize(label, train, val, cache_bytes(cache), []), server))
    return started


def measure_growth(space: Workspace, preset: Preset, client: Probe) -> list[GrowthSize]:
    """``growth_batches`` batch times per size, taken in alternating chunks."""
    crop = preset.fields
    chunk = max(1, preset.growth_batches // CHUNKS)
    with ExitStack() as stack:
        started = _start(stack, space, preset)
        for _, server in started:  # a first request warms each server up, untimed
            client.call("latency", url=server.url, start=0, count=1, **crop)
        for start in range(0, preset.growth_batches, chunk):
            count = min(chunk, preset.growth_batches - start)
            for size, server in started:
                say(f"growth {size.label}: batches {start}..{start + count - 1}")
                answer = client.call("latency", url=server.url, start=start, count=count, **crop)
                size.seconds.extend(float(s) for s in answer["seconds"])
    return [size for size, _ in started]
