"""The trainer's side of segserve: HTTP client, batch loader, normalisation.

Framework adapters live in :mod:`client.gluon` (MXNet) and :mod:`client.torch`
(PyTorch); importing this package imports neither framework.
"""

from client.batch import Batch
from client.errors import (
    AuthenticationError,
    InvalidParameterError,
    NotFoundError,
    ProtocolError,
    SegserveClientError,
    ServerError,
    TransportError,
    UnavailableError,
)
from client.http import SegClient
from client.loader import BatchLoader
from client.normalize import normalize

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
