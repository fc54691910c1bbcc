"""``BatchRequest``: every batch and crop query parameter, typed, checked, in one object.

``SegClient``, the loaders, the epoch stream and both framework adapters take
one of these instead of loose keyword lists. It is frozen (hashable, safe to
share between threads); derive variants with :meth:`BatchRequest.replace`.

Each field declares the endpoints that take it (:data:`Endpoint`), so
:meth:`BatchRequest.query` gives exactly the parameters of one endpoint: a
batch, an epoch stream (the epoch is in its path), a crop, or the split's
sizing (``usable``/``batches``). Adding a parameter is adding one field with
its default and ``metadata=sent_to(...)`` (the endpoints that take it) and, when it has a
range, one line in :meth:`BatchRequest.__post_init__`.

Checks here catch what no server would accept (types, choices, ``height >= 1``,
the seed range) before a request leaves the trainer; limits that depend on the
deployment (largest batch, largest crop) are the server's to check.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal, get_args

from segserve_client.errors import RequestError
from segserve_client.protocol.encoding import Encoding, transport_problem
from segserve_client.protocol.params import (
    MAX_CAT_RATIO,
    MAX_SCALE,
    SEED_LIMIT,
    CropMode,
    Dtype,
    Layout,
    Small,
    Void,
    default_layout,
)

Endpoint = Literal["batch", "stream", "crop", "split"]
ENDPOINTS: Final[tuple[Endpoint, ...]] = get_args(Endpoint)
_SAMPLES: Final[tuple[Endpoint, ...]] = ("batch", "stream", "crop")  # what fetches pixels
_EPOCHS: Final[tuple[Endpoint, ...]] = ("batch", "stream")  # what orders an epoch


def sent_to(*endpoints: Endpoint) -> dict[str, frozenset[Endpoint]]:
    """A field's metadata: the endpoints that take it (default: all)."""
    return {"endpoints": frozenset(endpoints or ENDPOINTS)}


@dataclass(frozen=True)
class BatchRequest:
    """The parameters of a batch, an epoch stream or a crop (API.md, batch parameters).

    ``height`` x ``width``: the crop. ``batch_size``, ``seed``, ``epoch``,
    ``shuffle``, ``drop_last``: which samples, in which order (``seed=None``
    lets the server pick one: crops only; batches default to 0). ``small``,
    ``void``, ``flip``, ``scale``: how each sample becomes a crop;
    ``cat_max_ratio`` (0 < r <= 1, 1 = off), ``photometric``, ``crop_mode``
    (``random``, ``center``, ``full``): the training-recipe parameters. ``dtype``,
    ``layout``: the image tensor (``layout=None``: ``nhwc`` for uint8, ``nchw``
    for float32). ``encoding`` (``raw``, ``lossless``, ``jpeg``) and ``quality``
    (1-100, ``jpeg`` only; None: 95): how image and label travel; the client
    decodes every encoding back to the arrays of ``raw``. A bad value raises
    :class:`~segserve_client.errors.RequestError` naming the parameter and its range.
    """

    height: int = field(metadata=sent_to())
    width: int = field(metadata=sent_to())
    batch_size: int = field(default=64, metadata=sent_to("batch", "stream", "split"))
    seed: int | None = field(default=0, metadata=sent_to(*_SAMPLES))
    epoch: int = field(default=0, metadata=sent_to("batch", "crop"))
    shuffle: bool = field(default=True, metadata=sent_to(*_EPOCHS))
    drop_last: bool = field(default=True, metadata=sent_to("batch", "stream", "split"))
    small: Small = field(default="drop", metadata=sent_to())
    void: Void = field(default="ignore", metadata=sent_to(*_SAMPLES))
    flip: bool = field(default=False, metadata=sent_to(*_SAMPLES))
    scale: tuple[float, float] | None = field(default=None, metadata=sent_to(*_SAMPLES))
    # The recipe parameters, off by default, are sent only when set: a request
    # without them reads as it did before they existed.
    cat_max_ratio: float = field(
        default=MAX_CAT_RATIO, metadata={**sent_to(*_SAMPLES), "omit": MAX_CAT_RATIO}
    )
    photometric: bool = field(default=False, metadata={**sent_to(*_SAMPLES), "omit": False})
    crop_mode: CropMode = field(default="random", metadata={**sent_to(), "omit": "random"})
    dtype: Dtype = field(default="uint8", metadata=sent_to(*_SAMPLES))
    layout: Layout | None = field(default=None, metadata=sent_to(*_SAMPLES))
    # raw is left out of the query: a server that predates encodings still answers.
    encoding: Encoding = field(default="raw", metadata={**sent_to(*_SAMPLES), "omit": "raw"})
    quality: int | None = field(default=None, metadata=sent_to(*_SAMPLES))

    def __post_init__(self) -> None:
        _check_int("height", self.height, 1)
        _check_int("width", self.width, 1)
        _check_int("batch_size", self.batch_size, 1)
        if self.seed is not None:
            _check_int("seed", self.seed, 0, SEED_LIMIT - 1)
        _check_int("epoch", self.epoch, 0, SEED_LIMIT - 1)
        for name in ("shuffle", "drop_last", "flip", "photometric"):
            _check_bool(name, getattr(self, name))
        _check_choice("crop_mode", self.crop_mode, get_args(CropMode))
        object.__setattr__(self, "cat_max_ratio", _checked_ratio(self.cat_max_ratio))
        _check_choice("small", self.small, get_args(Small))
        _check_choice("void", self.void, get_args(Void))
        _check_choice("dtype", self.dtype, get_args(Dtype))
        if self.layout is not None:
            _check_choice("layout", self.layout, get_args(Layout))
        if self.scale is not None:
            object.__setattr__(self, "scale", _checked_scale(self.scale))
        problem = transport_problem(self.encoding, self.quality, self.dtype, self.layout)
        if problem is not None:
            raise RequestError(*problem)

    @classmethod
    def of(cls, request: BatchRequest | None = None, **params: Any) -> BatchRequest:
        """``request`` with ``params`` replaced, or a new request from ``params`` alone."""
        if request is None:
            return cls(**params)
        return request.replace(**params) if params else request

    def replace(self, **changes: Any) -> BatchRequest:
        """A copy with ``changes`` (checked like a new request)."""
        return dataclasses.replace(self, **changes)

    @property
    def crop_size(self) -> tuple[int, int]:
        """``(height, width)``, the chapter's ``crop_size``."""
        return self.height, self.width

    @property
    def resolved_layout(self) -> Layout:
        """``layout``, or its default for ``dtype``."""
        return default_layout(self.dtype) if self.layout is None else self.layout

    def query(self, endpoint: Endpoint = "batch") -> dict[str, str]:
        """The query parameters ``endpoint`` takes, as strings, in field order.

        None is left out, and so is ``encoding=raw``.
        """
        return {
            f.name: _text(value)
            for f in dataclasses.fields(self)
            if endpoint in f.metadata["endpoints"]
            and (value := getattr(self, f.name)) is not None
            and value != f.metadata.get("omit")
        }


def _text(value: object) -> str:
    """A query value as the server parses it (``true``/``false``, ``lo,hi``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(repr(float(v)) for v in value)
    return str(value)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):  # type: ignore[operator]
        upper = "" if high is None else f" and <= {high}"
        raise RequestError(name, f"must be an integer >= {low}{upper}, got {value!r}")


def _check_bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise RequestError(name, f"must be True or False, got {value!r}")


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise RequestError(name, f"must be one of {', '.join(allowed)}; got {value!r}")


def _checked_scale(scale: object) -> tuple[float, float]:
    """``(lo, hi)`` as floats with ``0 < lo <= hi <= MAX_SCALE``."""
    detail = f"must be two numbers (lo, hi) with 0 < lo <= hi <= {MAX_SCALE:g}, got {scale!r}"
    if not isinstance(scale, tuple | list) or len(scale) != 2:
        raise RequestError("scale", detail)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in scale):
        raise RequestError("scale", detail)
    lo, hi = float(scale[0]), float(scale[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi <= MAX_SCALE):
        raise RequestError("scale", detail)
    return lo, hi


def _checked_ratio(ratio: object) -> float:
    """``cat_max_ratio`` as a float with ``0 < r <= MAX_CAT_RATIO``."""
    ok = isinstance(ratio, int | float) and not isinstance(ratio, bool)
    value = float(ratio) if ok else math.nan  # type: ignore[arg-type]
    if not (math.isfinite(value) and 0.0 < value <= MAX_CAT_RATIO):
        raise RequestError(
            "cat_max_ratio", f"must be a number > 0 and <= {MAX_CAT_RATIO:g}, got {ratio!r}"
        )
    return value
