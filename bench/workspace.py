"""The benchmark's scratch space: generated datasets, decoded caches, logs.

Datasets are generated once per size and kept (the generator is
deterministic, so a kept one is the same bytes); caches are made afresh by
each run that needs an empty or a just-built one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.server import segserve_command
from service.demo import ensure_demo


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says where to look."""


class Workspace:
    """Folders below ``root``: ``data/`` (kept), ``caches/`` and ``logs/`` (per run)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.caches = root / "caches"
        self.logs = root / "logs"
        for folder in (self.data, self.caches, self.logs):
            folder.mkdir(parents=True, exist_ok=True)

    def dataset(self, train: int, val: int, seed: int) -> Path:
        """The demo dataset of this size, generated when it is not there yet."""
        say(f"dataset: {train} train + {val} val images")
        return ensure_demo(self.data, train=train, val=val, seed=seed)

    def fresh_cache(self, name: str) -> Path:
        """An empty cache folder ``caches/<name>`` (whatever was there is removed)."""
        path = self.caches / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def log(self, name: str) -> Path:
        """``logs/<name>.log``."""
        return self.logs / f"{name}.log"

    def clean_caches(self) -> None:
        """Remove every decoded cache of this workspace (they are per run)."""
        shutil.rmtree(self.caches, ignore_errors=True)
        self.caches.mkdir(parents=True)


def prepare(root: Path, cache_dir: Path, log: Path) -> float:
    """Run ``segserve prepare`` (a cold build when ``cache_dir`` is empty); its wall seconds."""
    command = [*segserve_command(), "prepare", "--data-root", str(root)]
    command += ["--cache-dir", str(cache_dir)]
    started = time.perf_counter()
    with log.open("ab") as output:
        done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"segserve prepare exited with {done.returncode}; see {log}")
    return seconds


def cache_bytes(cache_dir: Path) -> int:
    """Bytes of the decoded cache files in ``cache_dir`` (every published cache folder)."""
    folders = [p for p in cache_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sum(f.stat().st_size for folder in folders for f in folder.iterdir() if f.is_file())


def say(message: str) -> None:
    """Progress on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)
