"""Transport encodings on the server side: checking a request's ``encoding``/``quality``.

The rule itself and the codecs live in the client's protocol package
(:mod:`segserve_client.protocol.encoding`), so that server and client apply
the same checks and the same codec settings; this module turns the rule's
verdict into the engine's :class:`~service.errors.InvalidParameterError`.
"""

from __future__ import annotations

from typing import Final

from segserve_client.protocol.encoding import (
    ENCODINGS,
    Encoding,
    Transport,
    codec_versions,
    transport_problem,
)

from service.errors import InvalidParameterError

RAW: Final = Transport()

__all__ = ["ENCODINGS", "RAW", "Encoding", "Transport", "checked_transport", "transport_tag"]


def checked_transport(
    encoding: object,
    quality: object = None,
    dtype: str = "uint8",
    layout: str | None = None,
) -> Transport:
    """The request's :class:`Transport`; 422 naming the parameter (and its partner) if refused."""
    problem = transport_problem(encoding, quality, dtype, layout)
    if problem is not None:
        raise InvalidParameterError(*problem)
    return Transport(encoding, quality)  # type: ignore[arg-type]


def transport_tag(transport: Transport) -> tuple[object, ...]:
    """What an entity tag adds for ``transport``: nothing for ``raw`` (its bodies are unchanged)."""
    if transport.encoding == "raw":
        return ()
    return (transport.describe(), codec_versions())
