"""Domain errors of the engine.

Each error carries a short machine-readable ``code``; the HTTP layer maps the
class to a status and renders an RFC 9457 problem in one place. Nothing here
knows about HTTP.

    SegserveError
    ├── InvalidParameterError   a parameter outside its allowed range (names it)
    │   └── NoUsableSampleError the crop size leaves no sample under small=drop
    ├── NotFoundError           unknown split, sample index or batch number
    ├── DatasetNotReadyError    the dataset is still loading or failed to load
    ├── DatasetError            a data root that is not a usable VOC layout
    └── DownloadError           the archive could not be fetched or verified
"""

from __future__ import annotations


class SegserveError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "segserve-error"
    title = "segserve error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidParameterError(SegserveError):
    """A request parameter is outside its allowed range; ``detail`` names it and the range."""

    code = "invalid-parameter"
    title = "Invalid parameter"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(f"{parameter}: {detail}")
        self.parameter = parameter


class NoUsableSampleError(InvalidParameterError):
    """The crop size leaves no usable sample in the split under ``small=drop``."""

    code = "no-usable-sample"
    title = "No usable sample"


class NotFoundError(SegserveError):
    """An unknown split, or a sample index or batch number out of range."""

    code = "not-found"
    title = "Not found"


class DatasetNotReadyError(SegserveError):
    """The dataset is still loading, or loading it failed."""

    code = "dataset-not-ready"
    title = "Dataset not ready"


class DatasetError(SegserveError):
    """A data root that cannot be served (no split file, nothing decodable, ...)."""

    code = "dataset-error"
    title = "Dataset error"


class DownloadError(SegserveError):
    """The archive could not be fetched, verified or extracted."""

    code = "download-error"
    title = "Download failed"
