"""What an app instance holds: its settings, the dataset being loaded, metrics, work slots.

The dataset is opened in a background thread started by the lifespan (building
the decoded cache of real VOC2012 takes a while): ``/healthz`` answers at once,
``/readyz`` and every data endpoint tell the client to come back until it is done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

from app.metrics import Metrics
from app.problems import OverloadedError
from service.config import Settings
from service.dataset import Dataset, open_dataset
from service.demo import ensure_demo
from service.errors import DatasetNotReadyError, SegserveError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def data_root(settings: Settings, *, progress: bool = False) -> Path:
    """The configured data root, or the demo dataset (written into the cache dir if missing)."""
    if settings.data_root is not None:
        return settings.data_root
    return ensure_demo(
        settings.cache_dir,
        train=settings.demo_train,
        val=settings.demo_val,
        seed=settings.demo_seed,
        progress=progress,
    )


def load_dataset(settings: Settings) -> Dataset:
    """Open the dataset the settings name, building its decoded cache when needed."""
    root = data_root(settings)
    return open_dataset(root, settings.cache_dir, settings.label_dir, split_dir=settings.split_dir)


class DatasetLoader:
    """Loads the dataset once, in a daemon thread, and reports how that went."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._dataset: Dataset | None = None
        self._failure: str | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start loading (once); returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="segserve-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        try:
            self._dataset = load_dataset(self._settings)
            logger.info("dataset %s ready", self._dataset.name)
        except SegserveError as error:
            self._failure = error.detail
            logger.error("loading the dataset failed: %s", error.detail)
        except Exception as error:  # the thread must always report, whatever went wrong
            self._failure = f"{type(error).__name__}: {error}"
            logger.exception("loading the dataset failed")
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading has finished (or failed); False on timeout."""
        return self._done.wait(timeout)

    def dataset(self) -> Dataset:
        """The loaded dataset; :class:`DatasetNotReadyError` while loading or after a failure."""
        if self._dataset is not None:
            return self._dataset
        if self._failure is not None:
            raise DatasetNotReadyError(f"loading the dataset failed: {self._failure}")
        raise DatasetNotReadyError("the dataset is still loading; retry shortly")


class WorkSlots:
    """At most ``limit`` heavy requests at once; a request that finds none free is refused."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot for the block; ``OverloadedError`` (503) at once when none is free."""
        if not self._semaphore.acquire(blocking=False):
            raise OverloadedError(f"{self.limit} heavy requests are already running; retry shortly")
        try:
            yield
        finally:
            self._semaphore.release()

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a worker thread, holding a slot."""
        with self.hold():
            return await run_in_threadpool(func, *args)


@dataclass
class Services:
    """Everything the handlers of one app reach through dependencies."""

    settings: Settings
    loader: DatasetLoader
    metrics: Metrics = field(default_factory=Metrics)
    slots: WorkSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = WorkSlots(self.settings.max_concurrency)
