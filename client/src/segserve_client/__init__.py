"""The trainer's side of segserve: HTTP client, batch loader, normalisation.

Framework adapters live in :mod:`segserve_client.gluon` (MXNet) and :mod:`segserve_client.torch`
(PyTorch); importing this package imports neither framework.
"""

from segserve_client.batch import Batch
from segserve_client.errors import (
    AuthenticationError,
    InvalidParameterError,
    NotFoundError,
    ProtocolError,
    SegserveClientError,
    ServerError,
    TransportError,
    UnavailableError,
)
from segserve_client.http import SegClient
from segserve_client.loader import BatchLoader
from segserve_client.normalize import normalize

__all__ = [
    "AuthenticationError",
    "Batch",
    "BatchLoader",
    "InvalidParameterError",
    "NotFoundError",
    "ProtocolError",
    "SegClient",
    "SegserveClientError",
    "ServerError",
    "TransportError",
    "UnavailableError",
    "normalize",
]
