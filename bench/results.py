"""Everything one run measured, as plain data that round-trips through JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.memory import ProcessMemory
from bench.stats import Epoch, Series, median


@dataclass
class Environment:
    """Where and when the run happened, and on what data."""

    preset: str
    started: str
    cpus: int
    memory_gib: float
    versions: dict[str, str]
    train_images: int
    val_images: int
    usable_train: int = 0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    min_seconds: float = 0.0  # each round of a configuration: epochs for at least this long


@dataclass
class Startup:
    """Start-up costs (seconds) and memory.

    ``chapter_load``: the chapter's train + val datasets, once per chapter
    process; ``cold_build``: ``segserve prepare`` on an empty cache (process
    wall time); ``cold_ready`` / ``warm_ready``: server start to ``/readyz``
    200 on an empty / a built cache, per worker count; ``first_batch``: then a
    new client's first uint8 batch (no prefetch); ``open_dataset``: the
    warm ``open_dataset`` call in process; ``memory``: server processes after
    serving an epoch of each delivery, per worker count.
    """

    chapter_load: list[float] = field(default_factory=list)
    chapter_load_train: list[float] = field(default_factory=list)
    cold_build: list[float] = field(default_factory=list)
    cold_ready: list[float] = field(default_factory=list)
    warm_ready: dict[str, list[float]] = field(default_factory=dict)
    first_batch: dict[str, list[float]] = field(default_factory=dict)
    open_dataset: list[float] = field(default_factory=list)
    cache_bytes: int = 0
    memory: dict[str, list[ProcessMemory]] = field(default_factory=dict)


@dataclass
class GrowthSize:
    """One dataset size of the growth check and its batch times (no prefetch)."""

    label: str
    train_images: int
    val_images: int
    cache_bytes: int
    seconds: list[float]


@dataclass
class NginxRun:
    """The phase through nginx: whether it was measured (or why not) and its series.

    ``status``: ``measured``, or ``not measured: <why>``; ``version``: of the
    nginx binary; ``config``: the deployed configuration it ran (a path in the
    repository). Series kinds: ``nginx-1r`` and ``nginx-2r`` (through nginx
    listing 1 or 2 replicas), ``direct-2r`` (the client given both replicas'
    URLs); ``workers`` is uvicorn workers per replica.
    """

    status: str = "not run"
    version: str = ""
    config: str = ""
    series: list[Series] = field(default_factory=list)


@dataclass
class LinkSeries:
    """One pipeline on one link: its epochs and, per epoch, what it cost.

    ``pipeline``: ``segserve``, ``webdataset`` or ``chapter``; ``mode``: the
    client probe's delivery mode (segserve) or empty; ``encoding``: segserve's
    transport encoding; ``workers``: DataLoader workers (WebDataset, chapter).
    Per epoch: CPU seconds of the serving side's processes (segserve or
    nginx; 0 in process) and of the trainer's (the probe and its children),
    and the bytes the trainer's end of the link received (0 on loopback).
    ``body_bytes``: bytes per sample of the payload as sent (HTTP bodies or
    shard files), measured apart from the epochs.
    """

    link: str
    pipeline: str
    mode: str
    encoding: str
    workers: int
    epochs: list[Epoch] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    wire_bytes: list[int] = field(default_factory=list)
    body_bytes: float = 0.0

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``1gbit-segserve-gluon-uint8-jpeg``."""
        parts = [self.link, self.pipeline, self.mode, self.encoding]
        if self.pipeline != "segserve":
            parts.append(f"{self.workers}w")
        return "-".join(part for part in parts if part)


@dataclass
class LinkInfo:
    """An emulated link: its name, shaped rate (bits/s, 0 when not shaped) and the
    throughput of one TCP stream measured over it (bits/s)."""

    name: str
    rate_bits: int
    tcp_bits: float


@dataclass
class LinkRun:
    """The link phase: whether it ran (or why not), its links and series, and its conditions."""

    status: str = "not run"
    started: str = ""
    wall_seconds: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    dataset: str = ""
    batches_per_epoch: int = 0
    warm_up: bool = False  # an uncounted epoch of each configuration first
    min_seconds: float = 0.0  # each round: whole epochs until this many seconds had passed
    links: list[LinkInfo] = field(default_factory=list)
    series: list[LinkSeries] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def find(self, key: str) -> LinkSeries | None:
        """The series called ``key``, if measured."""
        return next((s for s in self.series if s.key == key), None)


@dataclass
class ScaleSeries:
    """One route to ``replicas`` replicas in the scale-out phase, epoch by epoch.

    ``route``: ``direct`` (the client given every replica's URL) or ``nginx``
    (one nginx listing them); ``mode``: the client probe's delivery mode.
    Per epoch, the CPU seconds the replicas and nginx spent (from /proc);
    ``sample_bytes``: body bytes per sample of one batch as sent.
    """

    route: str
    replicas: int
    mode: str
    epochs: list[Epoch] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    proxy_cpu: list[float] = field(default_factory=list)
    sample_bytes: float = 0.0

    @property
    def key(self) -> str:
        """A short unique name, e.g. ``direct-4r-uint8``."""
        return f"{self.route}-{self.replicas}r-{self.mode}"

    @property
    def rate(self) -> float:
        """Median samples per second."""
        return median([epoch.rate for epoch in self.epochs])

    @property
    def per_core(self) -> float:
        """Median samples per CPU-second of the replicas: the per-core serving rate."""
        pairs = zip(self.epochs, self.server_cpu, strict=True)
        return median([epoch.samples / cpu for epoch, cpu in pairs if cpu > 0])


@dataclass
class ScaleoutRun:
    """The scale-out phase: whether it ran, its series, and the machine's load around it.

    ``warm_ready``: seconds from starting a replica on the warm cache to
    ``/readyz`` 200, per worker count; ``warm_cpu``: the CPU seconds its
    processes used by then (what a new pod costs before it serves).
    """

    status: str = "not run"
    started: str = ""
    wall_seconds: float = 0.0
    cpus: int = 0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    series: list[ScaleSeries] = field(default_factory=list)
    warm_ready: dict[str, list[float]] = field(default_factory=dict)
    warm_cpu: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def find(self, route: str, replicas: int, mode: str) -> ScaleSeries | None:
        """The series of ``route`` to ``replicas`` replicas in ``mode``, if measured."""
        key = f"{route}-{replicas}r-{mode}"
        return next((s for s in self.series if s.key == key), None)


@dataclass
class Results:
    """One benchmark run."""

    environment: Environment
    throughput: list[Series] = field(default_factory=list)
    startup: Startup = field(default_factory=Startup)
    growth: list[GrowthSize] = field(default_factory=list)
    nginx: NginxRun = field(default_factory=NginxRun)
    link: LinkRun = field(default_factory=LinkRun)
    scaleout: ScaleoutRun = field(default_factory=ScaleoutRun)
    codecs: dict[str, Any] = field(default_factory=dict)  # see bench.codecs
    recipes: dict[str, Any] = field(default_factory=dict)  # bench.recipes.document
    # The many-trainers phase (bench.trainers_report): its document, as measured.
    trainers: dict[str, Any] = field(default_factory=dict)

    def series(self, key: str) -> Series | None:
        """The throughput series called ``key``, if measured."""
        return next((s for s in self.throughput if s.key == key), None)

    def save(self, path: Path) -> None:
        """Write the results as JSON."""
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Results:
        """Read results written by :meth:`save`."""
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        startup = dict(document["startup"])
        startup["memory"] = {
            workers: [ProcessMemory(**m) for m in members]
            for workers, members in startup["memory"].items()
        }
        return cls(
            environment=Environment(**document["environment"]),
            throughput=[_series(s) for s in document["throughput"]],
            startup=Startup(**startup),
            growth=[GrowthSize(**g) for g in document["growth"]],
            nginx=_nginx(document.get("nginx")),
            link=_link(document.get("link")),
            scaleout=_scaleout(document.get("scaleout")),
            codecs=dict(document.get("codecs") or {}),
            recipes=dict(document.get("recipes") or {}),
            trainers=document.get("trainers") or {},
        )


def _series(document: dict[str, Any]) -> Series:
    epochs = [Epoch(**epoch) for epoch in document.pop("epochs")]
    return Series(epochs=epochs, **document)


def _nginx(document: dict[str, Any] | None) -> NginxRun:
    if document is None:  # results written before the nginx phase existed
        return NginxRun()
    fields = dict(document)
    return NginxRun(series=[_series(s) for s in fields.pop("series")], **fields)


def _link(document: dict[str, Any] | None) -> LinkRun:
    if document is None:  # results written before the link phase existed
        return LinkRun()
    fields = dict(document)
    series = []
    for item in fields.pop("series"):
        values = dict(item)
        epochs = [Epoch(**epoch) for epoch in values.pop("epochs")]
        series.append(LinkSeries(epochs=epochs, **values))
    links = [LinkInfo(**link) for link in fields.pop("links")]
    return LinkRun(series=series, links=links, **fields)


def _scaleout(document: dict[str, Any] | None) -> ScaleoutRun:
    if document is None:  # results written before the scale-out phase existed
        return ScaleoutRun()
    fields = dict(document)
    series = []
    for item in fields.pop("series"):
        item = dict(item)
        epochs = [Epoch(**epoch) for epoch in item.pop("epochs")]
        series.append(ScaleSeries(epochs=epochs, **item))
    return ScaleoutRun(series=series, **fields)
