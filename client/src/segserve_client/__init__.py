"""The trainer's side of segserve: HTTP client, batch requests, loaders, normalisation.

Layers, each calling only the ones below it:

- :mod:`~segserve_client.protocol`: the wire format and constants (shared with the server);
- :mod:`~segserve_client.transport`, :mod:`~segserve_client.retry`,
  :mod:`~segserve_client.session`: the request layer (connections, the one
  retry loop with failover and a deadline, error mapping);
- :mod:`~segserve_client.loader`, :mod:`~segserve_client.stream`: an epoch's
  batches, prefetched or streamed;
- :class:`SegClient`: the API, with :class:`BatchRequest` for batch parameters;
- :mod:`segserve_client.gluon` (MXNet) and :mod:`segserve_client.torch`
  (PyTorch): framework adapters; importing this package imports neither framework.

Everything a trainer needs is exported here; the other modules are internal.
Each export is imported when first used: the server imports
:mod:`~segserve_client.protocol`, which runs this file, and needs none of the
request layer (nor tenacity, http.client) that the exports bring in.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Not deferred: importing the submodule of the same name would bind the module
# to this name, where the function is expected.
from segserve_client.normalize import normalize

if TYPE_CHECKING:
    from segserve_client.batch import Batch
    from segserve_client.errors import (
        AuthenticationError,
        ClientClosedError,
        DeadlineExceededError,
        InvalidParameterError,
        NotFoundError,
        ProtocolError,
        RequestError,
        SegserveClientError,
        ServerError,
        TransportError,
        UnavailableError,
    )
    from segserve_client.http import SegClient
    from segserve_client.loader import BatchLoader
    from segserve_client.request import BatchRequest

__all__ = [
    "AuthenticationError",
    "Batch",
    "BatchLoader",
    "BatchRequest",
    "ClientClosedError",
    "DeadlineExceededError",
    "InvalidParameterError",
    "NotFoundError",
    "ProtocolError",
    "RequestError",
    "SegClient",
    "SegserveClientError",
    "ServerError",
    "TransportError",
    "UnavailableError",
    "normalize",
]


# Where each export is defined: imported on first access (PEP 562).
_SOURCES = {
    "Batch": "segserve_client.batch",
    "BatchLoader": "segserve_client.loader",
    "BatchRequest": "segserve_client.request",
    "SegClient": "segserve_client.http",
    **dict.fromkeys(
        (
            "AuthenticationError",
            "ClientClosedError",
            "DeadlineExceededError",
            "InvalidParameterError",
            "NotFoundError",
            "ProtocolError",
            "RequestError",
            "SegserveClientError",
            "ServerError",
            "TransportError",
            "UnavailableError",
        ),
        "segserve_client.errors",
    ),
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(source), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
