"""The one retry loop: failover between replicas, jittered back-off, an overall deadline.

Every request the client makes (a JSON answer, a batch, the next frame of an
epoch stream) is one *attempt* on one replica, run through
:meth:`RetryPolicy.call`:

- a retryable failure (:func:`~segserve_client.errors.is_retryable`: no
  answer, 429, 5xx) takes that replica out of rotation
  (:class:`~segserve_client.replicas.ReplicaSet`: its back-off, or exactly
  its ``Retry-After``) and the attempt is made again at once on the next
  healthy replica -- failover costs no wait;
- when every replica is out, the loop waits until the first comes back,
  plus a random share (``jitter``) of that wait, so trainers told to come
  back at the same moment do not all return at once;
- it gives up when the next attempt would start after ``deadline`` seconds
  from the first, with a :class:`~segserve_client.errors.DeadlineExceededError`
  naming the URL, the time waited and the last failure.

Any other error (401, 404, 422, a malformed body) is raised at once. ``sleep``,
``clock`` and ``random`` are injectable, so the loop is tested without waiting.
"""

from __future__ import annotations

import random as random_module
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from segserve_client.errors import DeadlineExceededError, is_retryable
from segserve_client.replicas import ReplicaSet

T = TypeVar("T")
DEFAULT_DEADLINE = 600.0  # seconds: rides out a rolling update or a long overload


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying (``deadline`` s) and how to wait (``jitter``, injectables)."""

    deadline: float = DEFAULT_DEADLINE
    jitter: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = random_module.random

    def __post_init__(self) -> None:
        if not self.deadline >= 0:
            raise ValueError(f"deadline must be >= 0 seconds, got {self.deadline!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter!r}")

    def call(self, replicas: ReplicaSet, attempt: Callable[[int], T], *, hint: int, url: str) -> T:
        """``attempt(replica index)`` until it succeeds, fails for good, or the deadline passes.

        ``hint`` is the replica to try first; ``url`` (the request's path and
        query) names the request in the deadline error.
        """
        started = self.clock()
        tried: list[int] = []

        def once() -> T:
            i = replicas.pick(hint)
            tried.append(i)
            try:
                result = attempt(i)
            except Exception as error:
                if is_retryable(error):
                    replicas.failed(i, getattr(error, "retry_after", None))
                raise
            replicas.succeeded(i)
            return result

        def wait(_: tenacity.RetryCallState) -> float:
            base = replicas.wait_time()
            return base * (1.0 + self.jitter * self.random())

        def past_deadline(state: tenacity.RetryCallState) -> bool:
            return self.clock() + state.upcoming_sleep - started > self.deadline

        def give_up(state: tenacity.RetryCallState) -> T:
            error = state.outcome.exception() if state.outcome is not None else None
            assert error is not None  # give_up runs after a failed attempt only
            where = replicas.replicas[tried[-1]].url + url
            waited = self.clock() - started
            raise DeadlineExceededError(where, waited, len(tried), self.deadline, error) from error

        retrying = tenacity.Retrying(
            stop=past_deadline,
            wait=wait,
            retry=tenacity.retry_if_exception(is_retryable),
            sleep=self._pause,
            retry_error_callback=give_up,
            reraise=True,
        )
        return retrying(once)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self.sleep(seconds)
