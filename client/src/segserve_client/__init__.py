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
"""

from segserve_client.batch import Batch
from segserve_client.errors import (
    AuthenticationError,
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
from segserve_client.normalize import normalize
from segserve_client.request import BatchRequest

__all__ = [
    "AuthenticationError",
    "Batch",
    "BatchLoader",
    "BatchRequest",
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
