"""What an app instance holds: its settings, the dataset being loaded, metrics, work slots.

The dataset is opened in a background thread started by the lifespan (building
the decoded cache of real VOC2012 takes a while): ``/healthz`` answers at once,
``/readyz`` and every data endpoint tell the client to come back until it is done.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.admission import WorkSlots
from app.metrics import Metrics
from service.config import Settings
from service.dataset import Dataset, open_dataset
from service.errors import DatasetNotReadyError, SegserveError
from service.pool import available_cpus
from service.progress import Progress

logger = logging.getLogger(__name__)


def data_root(settings: Settings, *, progress: Progress | bool = False) -> Path:
    """The configured data root, or the demo dataset (written into the cache dir if missing)."""
    if settings.data_root is not None:
        return settings.data_root
    from service.demo import ensure_demo  # with what draws it, only when there is no data root

    return ensure_demo(
        settings.cache_dir,
        train=settings.demo_train,
        val=settings.demo_val,
        seed=settings.demo_seed,
        progress=progress,
    )


def load_dataset(settings: Settings, progress: Progress | None = None) -> Dataset:
    """Open the dataset the settings name, building its decoded cache when needed.

    Each phase is logged with its count and time (and follows ``progress``),
    then the readiness, with the address of the API documentation.
    """
    progress = progress or Progress(bar=sys.stderr.isatty())
    started = time.perf_counter()
    root = data_root(settings, progress=progress)
    dataset = open_dataset(
        root, settings.cache_dir, settings.label_dir, split_dir=settings.split_dir,
        progress=progress,
    )  # fmt: skip
    splits = ", ".join(f"{name} {len(split)}" for name, split in sorted(dataset.splits.items()))
    logger.info(
        "dataset %s ready in %.1f s (%s; %d excluded); API docs at %s",
        dataset.name, time.perf_counter() - started, splits, len(dataset.excluded),
        docs_url(settings),
    )  # fmt: skip
    return dataset


def docs_url(settings: Settings) -> str:
    """Where the Swagger UI of a server with these settings is (a wildcard host as localhost)."""
    host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}/docs"


class DatasetLoader:
    """Loads the dataset once, in a daemon thread, and reports how that went."""

    def __init__(self, settings: Settings, progress: Progress | None = None) -> None:
        self._settings = settings
        self.progress = progress or Progress(bar=sys.stderr.isatty())
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
            self._dataset = load_dataset(self._settings, self.progress)
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
        phase = self.progress.describe()
        doing = f": {phase}" if phase else ""
        raise DatasetNotReadyError(f"the dataset is still loading{doing}; retry shortly")


@dataclass
class Services:
    """Everything the handlers of one app reach through dependencies."""

    settings: Settings
    loader: DatasetLoader
    metrics: Metrics = field(default_factory=Metrics)
    slots: WorkSlots = field(init=False)

    def __post_init__(self) -> None:
        self.slots = WorkSlots(
            self.settings.max_concurrency or available_cpus(),
            queue_limit=self.settings.queue_limit,
            wait_seconds=self.settings.queue_wait,
            metrics=self.metrics.admission,
        )
