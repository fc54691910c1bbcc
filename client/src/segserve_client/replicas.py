"""Which replica to ask next, and how long a failing one stays out of rotation.

A replica that fails (refused, reset, 5xx) is left out for a back-off that
doubles with each consecutive failure; one that says 429/503 with
``Retry-After`` is left out for exactly that long (at most ``max_retry_after``).
A success puts it back. When every replica is out, the caller waits until the
first comes back.

Each URL whose host is a name is resolved (:mod:`segserve_client.resolver`),
and every address it gives is a replica of its own: a headless Service's name
spreads requests over its pods. Names are resolved again every
``resolve_interval`` seconds, and at once (at most every ``min_resolve_interval``)
when every replica is out of rotation: new addresses join, addresses no longer
given leave. A replica is known by its index for the life of the set (indices
a caller holds stay valid): one that leaves is retired, never asked again unless
its address comes back. When a name does not resolve, the last answer is kept;
when it never did, the name itself is the replica (connected by name, as
``http.client`` does) until it does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from segserve_client.resolver import (
    AddressReplica,
    Resolver,
    is_address,
    system_resolver,
    url_host_port,
)
from segserve_client.transport import Replica

DEFAULT_RESOLVE_INTERVAL = 10.0  # seconds; a headless Service's DNS TTL is 30 s by default
MIN_RESOLVE_INTERVAL = 1.0


@dataclass
class _Slot:
    """One replica and its health; ``source`` is the index of the URL it came from."""

    replica: Replica
    source: int
    active: bool = True
    down_until: float = 0.0
    failures: int = 0


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
        resolver: Resolver = system_resolver,
        resolve_interval: float = DEFAULT_RESOLVE_INTERVAL,
        min_resolve_interval: float = MIN_RESOLVE_INTERVAL,
    ) -> None:
        if not urls:
            raise ValueError("at least one server URL is needed")
        self.urls = [url.rstrip("/") for url in urls]
        for url in self.urls:
            Replica(url).target("/")  # validates the URL now rather than at the first request
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.resolve_interval = resolve_interval
        self.min_resolve_interval = min_resolve_interval
        self._clock = clock
        self._resolver = resolver
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._resolving = False
        self._resolved_at = clock()
        for source, url in enumerate(self.urls):
            self._merge(source, self._addresses(url))

    # -- membership -----------------------------------------------------------

    @property
    def replicas(self) -> list[Replica]:
        """Every replica by index, retired ones included (an index stays valid)."""
        with self._lock:
            return [slot.replica for slot in self._slots]

    def __len__(self) -> int:
        """How many replicas are in the set now (retired ones not counted)."""
        with self._lock:
            return len(self._active())

    def _active(self) -> list[int]:
        return [i for i, slot in enumerate(self._slots) if slot.active]

    def _addresses(self, url: str) -> list[str] | None:
        """The addresses of ``url``'s host; None when it needs no resolving or failed to."""
        host, port = url_host_port(url)
        if is_address(host):
            return None
        try:
            return self._resolver(host, port) or None
        except OSError:
            return None

    def _merge(self, source: int, addresses: list[str] | None) -> None:
        """Make the slots of URL ``source`` match ``addresses`` (None: keep what is there)."""
        url = self.urls[source]
        mine = [slot for slot in self._slots if slot.source == source]
        if addresses is None:
            if not mine:
                self._slots.append(_Slot(Replica(url), source))
            return
        wanted = {AddressReplica(url, address) for address in addresses}
        for slot in mine:
            slot.active = slot.replica in wanted
            if slot.active:
                wanted.discard(slot.replica)
        for address in addresses:  # in the resolver's order
            replica = AddressReplica(url, address)
            if replica in wanted:
                self._slots.append(_Slot(replica, source))

    def refresh(self) -> None:
        """Resolve every name again now and update the set (see the module's docstring)."""
        answers = [(source, self._addresses(url)) for source, url in enumerate(self.urls)]
        with self._lock:
            for source, addresses in answers:
                self._merge(source, addresses)
            self._resolved_at = self._clock()

    def _maybe_refresh(self, *, all_down: bool) -> None:
        """Re-resolve when due; one thread at a time, the others go on with the current set."""
        with self._lock:
            since = self._clock() - self._resolved_at
            due = since >= self.resolve_interval or (
                all_down and since >= self.min_resolve_interval
            )
            if not due or self._resolving:
                return
            self._resolving = True
        try:
            self.refresh()
        finally:
            with self._lock:
                self._resolving = False

    # -- health ---------------------------------------------------------------

    def pick(self, hint: int = 0) -> int:
        """The first healthy replica from ``hint`` on (round robin), else the soonest back."""
        self._maybe_refresh(all_down=not any(self.healthy()))
        with self._lock:
            now = self._clock()
            active = self._active()
            n = len(active)
            for k in range(n):
                i = active[(hint + k) % n]
                if self._slots[i].down_until <= now:
                    return i
            return min(active, key=lambda i: self._slots[i].down_until)

    def failed(self, i: int, retry_after: float | None = None) -> None:
        """Take replica ``i`` out of rotation: ``retry_after`` seconds, else the back-off."""
        with self._lock:
            slot = self._slots[i]
            slot.failures += 1
            if retry_after is not None:
                delay = min(retry_after, self.max_retry_after)
            else:
                delay = min(self.max_backoff, self.backoff * 2 ** (slot.failures - 1))
            slot.down_until = self._clock() + delay

    def succeeded(self, i: int) -> None:
        """Replica ``i`` answered: back in rotation, back-off reset."""
        with self._lock:
            slot = self._slots[i]
            slot.failures = 0
            slot.down_until = 0.0

    def wait_time(self) -> float:
        """Seconds until some replica is back in rotation (0 when one is now)."""
        with self._lock:
            soonest = min(self._slots[i].down_until for i in self._active())
            return max(0.0, soonest - self._clock())

    def healthy(self) -> list[bool]:
        """Which of the replicas in the set are in rotation now, in index order."""
        with self._lock:
            now = self._clock()
            return [self._slots[i].down_until <= now for i in self._active()]
