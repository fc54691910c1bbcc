"""RFC 9457 problem details: every error response is rendered here, and only here.

Domain errors (:mod:`service.errors`, plus the two the HTTP layer raises itself,
:class:`UnauthorizedError` and :class:`OverloadedError`) map to a status through
``STATUS``; FastAPI's validation errors become 422 problems whose ``detail`` names
the parameter and its allowed range, read from the OpenAPI document so the
message and the documentation cannot disagree. Anything else is a 500 problem
that says nothing about the internals (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from app.validation import describe_validation_error
from service.errors import (
    DatasetError,
    DatasetNotReadyError,
    DownloadError,
    InvalidParameterError,
    NotFoundError,
    SegserveError,
)

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
NOT_READY_RETRY_SECONDS: Final = 5
OVERLOADED_RETRY_SECONDS: Final = 1


class UnauthorizedError(SegserveError):
    """The bearer token is missing or wrong."""

    code = "unauthorized"
    title = "Unauthorized"


class OverloadedError(SegserveError):
    """Every slot for heavy work is taken and the wait was too long; retry shortly."""

    code = "overloaded"
    title = "Service overloaded"


class DrainingError(OverloadedError):
    """The server is shutting down (SIGTERM): it takes no new work; retry on another replica."""

    code = "draining"
    title = "Service shutting down"


STATUS: Final[Mapping[type[SegserveError], int]] = {
    InvalidParameterError: 422,
    NotFoundError: 404,
    UnauthorizedError: 401,
    DatasetNotReadyError: 503,
    OverloadedError: 503,
    DatasetError: 503,
    DownloadError: 502,
}

_HEADERS: Final[Mapping[type[SegserveError], Mapping[str, str]]] = {
    UnauthorizedError: {"WWW-Authenticate": 'Bearer realm="segserve"'},
    DatasetNotReadyError: {"Retry-After": str(NOT_READY_RETRY_SECONDS)},
    # Connection: close, so that the client's next request opens a connection
    # elsewhere instead of reusing one to a server about to go.
    DrainingError: {"Retry-After": str(OVERLOADED_RETRY_SECONDS), "Connection": "close"},
    OverloadedError: {"Retry-After": str(OVERLOADED_RETRY_SECONDS)},
}


class Problem(BaseModel):
    """An RFC 9457 problem detail, the body of every error response."""

    type: str = Field(description="URI naming the kind of problem.", examples=["about:blank"])
    title: str = Field(description="Short summary of the kind of problem.", examples=["Not found"])
    status: int = Field(description="The HTTP status code.", examples=[404])
    detail: str = Field(
        description="What went wrong with this request.",
        examples=["split: unknown split 'tran'; known splits: train, trainval, val"],
    )
    code: str | None = Field(
        default=None, description="Machine-readable kind of problem.", examples=["not-found"]
    )


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; ``type`` names the problem when it has a code."""
    kind = f"urn:segserve:problem:{code}" if code else "about:blank"
    body = Problem(type=kind, title=title, status=status, detail=detail, code=code)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


_TITLES: Final = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}


def status_of(error: SegserveError) -> int:
    """The HTTP status of a domain error: the entry of its nearest class in ``STATUS``."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _headers_of(error: SegserveError) -> Mapping[str, str]:
    for cls in type(error).__mro__:
        if cls in _HEADERS:
            return _HEADERS[cls]
    return {}


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SegserveError)
    status = status_of(exc)
    if status >= 500 and status != 503:
        logger.error("%s on %s: %s", type(exc).__name__, request.url.path, exc.detail)
    return problem_response(status, exc.title, exc.detail, code=exc.code, headers=_headers_of(exc))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = describe_validation_error(request, exc.errors())
    return problem_response(422, "Invalid parameter", detail, code="invalid-parameter")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no endpoint at {request.url.path}; see /docs for the API"
    title = _TITLES.get(exc.status_code, "HTTP error")
    return problem_response(exc.status_code, title, detail, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(
        500, "Internal server error", "the server failed to answer this request", code="internal"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as a problem+json response."""
    app.add_exception_handler(SegserveError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses: problem+json bodies, each
    with an example of its own status."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS[status],
            "content": {"application/json": {"example": _EXAMPLES[status]}},
        }
        for status in statuses
    }


_DESCRIPTIONS: Final = {
    401: "Missing or wrong bearer token (only when the server has one set).",
    404: "Unknown split, or a sample index or batch number out of range.",
    422: "A parameter outside its allowed range; `detail` names it and the range.",
    503: "The dataset is still loading (`detail` gives the phase and its progress), too many "
    "heavy requests are waiting already, or the server is shutting down (see `Retry-After`).",
}


def _example(error: SegserveError, status: int) -> dict[str, Any]:
    """The body :func:`problem_response` sends for ``error``, as documentation."""
    return Problem(
        type=f"urn:segserve:problem:{error.code}",
        title=error.title,
        status=status,
        detail=error.detail,
        code=error.code,
    ).model_dump()


_EXAMPLES: Final = {
    401: _example(UnauthorizedError("authorization: wrong bearer token"), 401),
    404: _example(NotFoundError("unknown split 'tran'; available: train, trainval, val"), 404),
    422: _example(
        InvalidParameterError("void", "must be one of ignore, background, got 'none'"), 422
    ),
    503: _example(
        OverloadedError(
            "no slot for heavy work freed within 30 s (2 running, 128 waiting); retry shortly"
        ),
        503,
    ),
}


def move_problems_to_problem_json(openapi: dict[str, Any]) -> dict[str, Any]:
    """Document error bodies under ``application/problem+json``, the type they are sent with.

    FastAPI files every ``responses`` model under the route's JSON media type; this
    moves the error statuses' schemas to the problem media type.
    """
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.isdigit() and int(status) >= 400 and "application/json" in content:
                    content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
    return openapi


def drop_status(openapi: dict[str, Any], status: int) -> dict[str, Any]:
    """Remove the ``status`` response from every operation (401 on a server without a token)."""
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop(str(status), None)
    return openapi
