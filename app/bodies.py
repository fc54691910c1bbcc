"""Response bodies: media types, buffers sent without joining, caching headers, conditional GET.

Arrays leave as they are in memory: a safetensors header or an ``.npy`` header,
then the array's own buffer, sent as ``http.response.body`` messages of views
into it (at most :data:`SEND_PIECE` bytes each) under one ``Content-Length``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache
from importlib.metadata import version
from typing import Any, Final, ParamSpec

import numpy as np
import numpy.typing as npt
from fastapi import Request
from segserve_client.protocol.wire import Encoded
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.admission import WorkSlots
from service.errors import InvalidParameterError

P = ParamSpec("P")

SAFETENSORS: Final = "application/vnd.safetensors"
NPY: Final = "application/x-npy"
PNG: Final = "image/png"
JPEG: Final = "image/jpeg"
JSON: Final = "application/json"
FRAMES: Final = "application/octet-stream"

IMMUTABLE: Final = "public, max-age=31536000, immutable"
NO_STORE: Final = "no-store"
_BINARY: Final = {"type": "string", "format": "binary"}

Chunk = bytes | memoryview


# The largest piece of a buffer handed to the ASGI server at once. asyncio's
# transport sends what the socket takes and copies the rest of each write into
# its own buffer; pieces of this size mostly go straight to the socket.
SEND_PIECE: Final = 1 << 20


def pieces(chunks: Iterable[Chunk]) -> Iterator[memoryview]:
    """``chunks`` as consecutive views of at most :data:`SEND_PIECE` bytes (empty ones dropped)."""
    for chunk in chunks:
        view = memoryview(chunk).cast("B")
        for start in range(0, view.nbytes, SEND_PIECE):
            yield view[start : start + SEND_PIECE]


class BufferResponse(Response):
    """A response whose body is a sequence of buffers, sent in pieces, never joined."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self._chunks = [memoryview(chunk).cast("B") for chunk in chunks]
        self.body = b""
        self.init_headers({**(headers or {}), "Content-Length": str(self.nbytes)})

    @property
    def nbytes(self) -> int:
        """Length of the whole body."""
        return sum(chunk.nbytes for chunk in self._chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the status, the headers, then the buffers' pieces, one body message each."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        parts = list(pieces(self._chunks))
        for i, part in enumerate(parts):
            more = i < len(parts) - 1
            await send({"type": "http.response.body", "body": part, "more_body": more})
        if not parts:
            await send({"type": "http.response.body", "body": b""})


def safetensors_response(encoded: Encoded, headers: Mapping[str, str]) -> BufferResponse:
    """A safetensors body, header and tensor buffers sent as they are."""
    return BufferResponse(list(encoded.chunks()), SAFETENSORS, headers)


def npy_chunks(array: npt.NDArray[Any]) -> list[Chunk]:
    """An ``.npy`` file as (format header, the array's buffer): what ``np.save`` writes."""
    array = np.ascontiguousarray(array)
    header = io.BytesIO()
    fields = np.lib.format.header_data_from_array_1_0(array)  # type: ignore[no-untyped-call]
    np.lib.format.write_array_header_1_0(header, fields)  # type: ignore[no-untyped-call]
    return [header.getvalue(), memoryview(array.reshape(-1).view(np.uint8).data)]


def npy_response(array: npt.NDArray[Any], headers: Mapping[str, str]) -> BufferResponse:
    """An array as an ``.npy`` file, without copying the array into the body."""
    return BufferResponse(npy_chunks(array), NPY, headers)


async def rendered_response(
    slots: WorkSlots,
    media_type: str,
    headers: Mapping[str, str],
    render: Callable[P, bytes],
    *args: P.args,
    **kwargs: P.kwargs,
) -> Response:
    """A ``media_type`` body made by ``render(*args)`` in a worker thread, holding a slot."""
    body = await slots.run(render, *args, **kwargs)
    return Response(body, media_type=media_type, headers=headers)


def json_bytes(document: object) -> bytes:
    """Compact JSON of a document of lists and numbers."""
    return json.dumps(document, separators=(",", ":")).encode()


def check_json_size(elements: int, limit: int, what: str) -> None:
    """422 when an array too large for JSON is asked for as JSON, pointing at binary formats."""
    if elements > limit:
        raise InvalidParameterError(
            "format",
            f"json is limited to {limit} array elements and this {what} has {elements}; "
            "use format=npy or format=safetensors",
        )


@cache
def _version() -> str:
    """The package version: a new release may encode differently, so it is part of every tag."""
    return version("segserve")


def entity_tag(fingerprint: str, *parts: object) -> str:
    """A strong ETag for a response that is a pure function of the dataset and ``parts``."""
    text = json.dumps([_version(), fingerprint, *parts], sort_keys=True, default=str)
    return content_tag(text.encode())


def content_tag(body: bytes) -> str:
    """A strong ETag naming the bytes of ``body``."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def cache_headers(etag: str) -> dict[str, str]:
    """Headers of a deterministic response: its ETag, cacheable forever."""
    return {"ETag": etag, "Cache-Control": IMMUTABLE}


def not_modified(request: Request, etag: str) -> Response | None:
    """A 304 when the client's ``If-None-Match`` already names ``etag``; else None."""
    header = request.headers.get("if-none-match")
    if header is None:
        return None
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=cache_headers(etag))
    return None


def binary_content(*media_types: str) -> dict[str, Any]:
    """OpenAPI ``content`` entries for binary media types."""
    return {media_type: {"schema": dict(_BINARY)} for media_type in media_types}


def ok_response(
    description: str, binary: Iterable[str] = (), model: type | None = None
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI 200 entry of an endpoint with several formats (and a 304 for ETags)."""
    entry: dict[str, Any] = {"description": description, "content": binary_content(*binary)}
    if model is not None:
        entry["model"] = model
    return {200: entry, 304: {"description": "Not modified (the If-None-Match ETag matched)."}}
