"""Which replica to ask next, and how long a failing one stays out of rotation.

A replica that fails (refused, reset, 5xx) is left out for a back-off that
doubles with each consecutive failure; one that says 429/503 with
``Retry-After`` is left out for exactly that long (at most ``max_retry_after``).
A success puts it back. When every replica is out, the caller waits until the
first comes back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from segserve_client.transport import Replica


class ReplicaSet:
    """The replicas of one deployment and their health, shared by all threads."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_after: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("at least one server URL is needed")
        self.replicas = [Replica(url.rstrip("/")) for url in urls]
        for replica in self.replicas:
            replica.target("/")  # validates the URL now rather than at the first request
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self._clock = clock
        self._down_until = [0.0] * len(urls)
        self._failures = [0] * len(urls)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.replicas)

    def pick(self, hint: int = 0) -> int:
        """The first healthy replica from ``hint`` on (round robin), else the soonest back."""
        n = len(self.replicas)
        with self._lock:
            now = self._clock()
            for k in range(n):
                i = (hint + k) % n
                if self._down_until[i] <= now:
                    return i
            return min(range(n), key=self._down_until.__getitem__)

    def failed(self, i: int, retry_after: float | None = None) -> None:
        """Take replica ``i`` out of rotation: ``retry_after`` seconds, else the back-off."""
        with self._lock:
            self._failures[i] += 1
            if retry_after is not None:
                delay = min(retry_after, self.max_retry_after)
            else:
                delay = min(self.max_backoff, self.backoff * 2 ** (self._failures[i] - 1))
            self._down_until[i] = self._clock() + delay

    def succeeded(self, i: int) -> None:
        """Replica ``i`` answered: back in rotation, back-off reset."""
        with self._lock:
            self._failures[i] = 0
            self._down_until[i] = 0.0

    def wait_time(self) -> float:
        """Seconds until some replica is back in rotation (0 when one is now)."""
        with self._lock:
            return max(0.0, min(self._down_until) - self._clock())

    def healthy(self) -> list[bool]:
        """Which replicas are in rotation now."""
        with self._lock:
            now = self._clock()
            return [until <= now for until in self._down_until]
