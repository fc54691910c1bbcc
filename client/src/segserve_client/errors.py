"""Errors the client raises.

Every error is a :class:`SegserveClientError`; catch that to handle them all.

    SegserveClientError
    ├── RequestError                a parameter no server accepts (also a ValueError); not sent
    ├── TransportError              no usable answer: refused, reset, timed out, cut short
    ├── ProtocolError               an answer that breaks the API contract (bad framing, body)
    ├── ServerError                 an error status; ``status`` and the RFC 9457 ``problem``
    │   ├── AuthenticationError     401: missing or wrong token
    │   ├── NotFoundError           404: unknown split, index or batch out of range
    │   ├── InvalidParameterError   422: ``detail`` names the parameter and its range
    │   └── UnavailableError        429, 503 and other 5xx: retried; ``retry_after`` seconds
    └── DeadlineExceededError       retried until the deadline: ``url``, ``waited``, ``reason``

Only :class:`TransportError` and :class:`UnavailableError` are retried (see
:func:`is_retryable`), until the client's deadline; the others would give the
same answer again. When the deadline passes, :class:`DeadlineExceededError`
says where, for how long and why (its ``__cause__`` is the last failure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SegserveClientError(Exception):
    """Base of every error the client raises."""


class RequestError(SegserveClientError, ValueError):
    """A request parameter outside what any server accepts; raised before sending."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"{name}: {detail}")
        self.name = name
        self.detail = detail


class DeadlineExceededError(SegserveClientError):
    """Retried failures went on until the client's deadline.

    ``url``: the request last tried; ``waited``: seconds since the first
    attempt; ``attempts``: how many were made; ``reason``: the last failure.
    """

    def __init__(
        self, url: str, waited: float, attempts: int, deadline: float, reason: BaseException
    ) -> None:
        retry_after = getattr(reason, "retry_after", None)
        asked = "" if retry_after is None else f" (Retry-After {retry_after:g} s)"
        super().__init__(
            f"gave up on {url} after waiting {waited:.1f} s over {attempts} attempts "
            f"(deadline {deadline:g} s); last failure: {reason}{asked}"
        )
        self.url = url
        self.waited = waited
        self.attempts = attempts
        self.deadline = deadline
        self.reason = reason


class TransportError(SegserveClientError):
    """The replica could not be reached, or the connection broke before a full answer."""

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(f"{message} ({url})" if url else message)
        self.url = url


class ProtocolError(SegserveClientError):
    """The replica answered, but not in the form the API contract promises."""


class ServerError(SegserveClientError):
    """The replica answered with an error status and an RFC 9457 problem."""

    def __init__(self, status: int, problem: Mapping[str, Any], *, url: str = "") -> None:
        self.status = status
        self.problem: dict[str, Any] = dict(problem)
        self.url = url
        title = self.problem.get("title", "error")
        detail = self.problem.get("detail", "")
        super().__init__(f"{status} {title}: {detail} ({url})" if detail else f"{status} {title}")

    @property
    def detail(self) -> str:
        """The problem's human-readable ``detail`` ('' when the server gave none)."""
        return str(self.problem.get("detail", ""))


class AuthenticationError(ServerError):
    """401: the token is missing or wrong."""


class NotFoundError(ServerError):
    """404: unknown split, or a sample index or batch number out of range."""


class InvalidParameterError(ServerError):
    """422: a parameter outside its allowed range; ``detail`` names it."""


class UnavailableError(ServerError):
    """429, 503 or another 5xx: overloaded or failing; worth retrying, maybe elsewhere."""

    def __init__(
        self,
        status: int,
        problem: Mapping[str, Any],
        *,
        url: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, problem, url=url)
        self.retry_after = retry_after


_BY_STATUS: dict[int, type[ServerError]] = {
    401: AuthenticationError,
    404: NotFoundError,
    422: InvalidParameterError,
}


def server_error(
    status: int, problem: Mapping[str, Any], *, url: str = "", retry_after: float | None = None
) -> ServerError:
    """The :class:`ServerError` subclass that matches ``status``."""
    if status == 429 or status >= 500:
        return UnavailableError(status, problem, url=url, retry_after=retry_after)
    return _BY_STATUS.get(status, ServerError)(status, problem, url=url)


def is_retryable(error: BaseException) -> bool:
    """Whether asking again (here or on another replica) may succeed."""
    return isinstance(error, TransportError | UnavailableError)
