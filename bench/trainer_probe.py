"""One trainer of the many-trainers phase: ``python -m bench.trainer_probe URLS SECONDS SEED``.

It opens a :class:`segserve_client.SegClient` on ``URLS`` (comma-separated),
says ``ready`` on stdout, waits for a line on stdin (every trainer starts at
once), then runs ``iter_epoch`` (uint8, the preset's batch and crop) epoch after
epoch for ``SECONDS``, and prints one JSON line: samples, seconds, the intervals
between batches in hand, and the exception that ended it, if one did.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

from segserve_client import SegClient

STALL_SECONDS = 10.0


def train(urls: str, seconds: float, seed: int, shape: tuple[int, int, int]) -> dict[str, Any]:
    """Fetch batches for ``seconds``; what was delivered, and how evenly.

    The loop runs in a daemon thread: a request still being retried when the
    time is up (the client retries overload until its deadline) is reported
    as a stall, not waited for.
    """
    batch_size, height, width = shape
    stamps: list[float] = []
    samples = [0]
    errors: list[str] = []
    client = SegClient(urls)
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()

    def loop() -> None:
        epoch = 0
        try:
            while time.perf_counter() - started < seconds:
                for batch in client.iter_epoch("train", epoch, batch_size, height, width, seed):
                    samples[0] += len(batch.index)
                    stamps.append(time.perf_counter() - started)
                    if stamps[-1] >= seconds:
                        return
                epoch += 1
        except Exception as failure:  # reported: a trainer that dies is what is measured
            errors.append(f"{type(failure).__name__}: {failure}")

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    worker.join(seconds + STALL_SECONDS)
    if worker.is_alive():
        errors.append(f"stalled: a request still unanswered {STALL_SECONDS:g} s after the run")
    elapsed = min(stamps[-1], seconds) if stamps else seconds
    kept = [t for t in stamps if t <= seconds]
    intervals = [b - a for a, b in zip([0.0, *kept], kept, strict=False)]
    count = samples[0] * len(kept) // max(len(stamps), 1)
    return {
        "samples": count,
        "seconds": elapsed,
        "intervals": intervals,
        "error": "; ".join(errors) or None,
    }


def main() -> None:
    """Run one trainer as the command line says."""
    urls, seconds, seed, batch_size, height, width = sys.argv[1:7]
    shape = (int(batch_size), int(height), int(width))
    print(json.dumps(train(urls, float(seconds), int(seed), shape)), flush=True)
    os._exit(0)  # without waiting for a request still in flight


if __name__ == "__main__":
    main()
