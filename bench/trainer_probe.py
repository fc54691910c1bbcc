"""One trainer of the many-trainers phase: ``python -m bench.trainer_probe URLS SECONDS SEED``.

It opens a :class:`segserve_client.SegClient` on ``URLS`` (comma-separated),
says ``ready`` on stdout, waits for a line on stdin (every trainer starts at
once), then runs ``iter_epoch`` (uint8, the preset's batch and crop) epoch after
epoch for ``SECONDS``, and prints one JSON line: samples, seconds, the intervals
between batches in hand, and the exception that ended it, if one did.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from segserve_client import SegClient


def train(urls: str, seconds: float, seed: int, shape: tuple[int, int, int]) -> dict[str, Any]:
    """Fetch batches for ``seconds``; what was delivered, and how evenly."""
    batch_size, height, width = shape
    samples, stamps, error = 0, [], None
    with SegClient(urls) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.perf_counter()
        deadline = started + seconds
        epoch = 0
        try:
            while time.perf_counter() < deadline:
                batches = client.iter_epoch("train", epoch, batch_size, height, width, seed)
                for batch in batches:
                    samples += len(batch.index)
                    stamps.append(time.perf_counter() - started)
                    if stamps[-1] >= seconds:
                        break
                epoch += 1
        except Exception as failure:  # reported: a trainer that dies is what is measured
            error = f"{type(failure).__name__}: {failure}"
    elapsed = stamps[-1] if stamps else seconds
    intervals = [b - a for a, b in zip([0.0, *stamps], stamps, strict=False)]
    return {"samples": samples, "seconds": elapsed, "intervals": intervals, "error": error}


def main() -> None:
    """Run one trainer as the command line says."""
    urls, seconds, seed, batch_size, height, width = sys.argv[1:7]
    shape = (int(batch_size), int(height), int(width))
    print(json.dumps(train(urls, float(seconds), int(seed), shape)), flush=True)


if __name__ == "__main__":
    main()
