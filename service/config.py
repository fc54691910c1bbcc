"""Settings: one pydantic-settings class, read from ``SEGSERVE_*`` variables.

Created where it is used (the CLI, the app factory), never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/segserve`` (``~/.cache/segserve``)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "segserve"


class Settings(BaseSettings):
    """Every knob of the service; each one is also a ``SEGSERVE_<NAME>`` variable."""

    model_config = SettingsConfigDict(env_prefix="SEGSERVE_", extra="ignore")

    data_root: Path | None = Field(
        default=None,
        description="A VOC-layout folder (JPEGImages, SegmentationClass, ImageSets/Segmentation). "
        "Unset: the built-in demo dataset, generated into the cache directory.",
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the decoded cache (and the demo dataset) live.",
    )
    label_dir: str = Field(
        default="SegmentationClass",
        description="Label folder below the data root, e.g. SegmentationClassAug (SBD's "
        "trainaug labels: single-channel PNGs whose value is the class).",
    )
    split_dir: str = Field(
        default="ImageSets/Segmentation",
        description="Folder below the data root whose NAME.txt files are the splits, "
        "e.g. ImageSets/SegmentationAug.",
    )
    demo_train: int = Field(default=1464, ge=1, description="Demo dataset: train images.")
    demo_val: int = Field(default=1449, ge=1, description="Demo dataset: val images.")
    demo_seed: int = Field(default=0, ge=0, description="Demo dataset: generator seed.")
    api_token: SecretStr | None = Field(
        default=None, description="When set, every /v1 endpoint requires this bearer token."
    )
    max_batch_size: int = Field(default=256, ge=1, description="Largest batch_size accepted.")
    max_crop_pixels: int = Field(
        default=4096 * 4096, ge=1, description="Largest height * width accepted for a crop."
    )
    max_batch_bytes: int = Field(
        default=512 * 1024 * 1024,
        ge=1,
        description="Largest batch (image and label arrays) assembled for one request.",
    )
    max_json_elements: int = Field(
        default=1_000_000,
        ge=1,
        description="Largest array returned as JSON; beyond it, a 422 points at a binary format.",
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Heavy requests (crops, batches, a stream's next batch) built at once by "
        "each worker process. Unset: the CPUs this process may use (affinity, cgroup quota).",
    )
    queue_limit: int = Field(
        default=128,
        ge=0,
        description="Heavy requests that may wait for a slot; beyond it, 503 with Retry-After.",
    )
    queue_wait: float = Field(
        default=30.0,
        ge=0,
        description="Seconds a heavy request waits for a slot before a 503 with Retry-After.",
    )
    drain_seconds: float = Field(
        default=25.0,
        gt=0,
        description="On SIGTERM: seconds to finish in-flight work before exiting (keep it below "
        "the container's grace period: compose stop_grace_period, Kubernetes "
        "terminationGracePeriodSeconds).",
    )
    stream_prefetch: int = Field(
        default=2, ge=1, description="Batches an epoch stream builds ahead of the client."
    )
    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port to listen on.")
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes.")
    log_level: str = Field(default="info", description="uvicorn log level.")
