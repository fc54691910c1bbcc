"""Host names to addresses: one replica per address of a multi-address name.

A headless Kubernetes Service (``clusterIP: None``) -- or any DNS name with
several A/AAAA records -- resolves to every ready pod. The client treats each
address as a replica (:class:`~segserve_client.replicas.ReplicaSet`), so a
trainer reaches the pods directly, without a proxy hop.

:data:`Resolver` is the injectable part: ``resolver(host, port)`` returns the
addresses to connect to, in preference order. :func:`system_resolver` asks
``getaddrinfo``. :class:`AddressReplica` connects to one address while every
request still says ``Host: <the URL's host>`` (and TLS checks the URL's name),
so virtual hosting, proxies in front of a pod and certificates see the name the
trainer was given.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from segserve_client.transport import Replica

Resolver = Callable[[str, int], list[str]]


def is_address(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 literal (nothing to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``getaddrinfo`` gives for ``host``, of its preferred family, deduplicated.

    Only the family of the first answer is kept (``getaddrinfo`` sorts by
    RFC 6724 preference): a dual-stack pod has an A and an AAAA record, and
    counting it twice would give it twice the share of requests; ``localhost``
    is both 127.0.0.1 and ::1, where a server usually listens on one.
    Raises :class:`OSError` (``socket.gaierror``) when the name does not resolve.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    if not infos:
        return []
    family = infos[0][0]
    addresses = [str(info[4][0]) for info in infos if info[0] == family]
    return list(dict.fromkeys(addresses))


def url_host_port(url: str) -> tuple[str, int]:
    """The host name and port a base URL names (the scheme's default port when it has none)."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(frozen=True)
class AddressReplica(Replica):
    """The replica at one ``address`` of the host name in ``url``."""

    address: str = ""

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        """A new connection to ``address`` that sends the URL's ``Host``."""
        parts = urlsplit(self.url)
        _, port = url_host_port(self.url)
        host_header = parts.netloc.rpartition("@")[2]
        if parts.scheme == "https":
            return _PinnedHTTPSConnection(self.address, port, host_header, parts.hostname, timeout)
        return _PinnedHTTPConnection(self.address, port, host_header, timeout)

    def __str__(self) -> str:
        return f"{self.url} at {self.address}"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to an address; the ``Host`` header names the host of the URL."""

    def __init__(self, address: str, port: int, host_header: str, timeout: float) -> None:
        super().__init__(address, port, timeout=timeout)
        self._host_header = host_header

    def putrequest(
        self, method: str, url: str, skip_host: bool = False, skip_accept_encoding: bool = False
    ) -> None:
        """As http.client's, with ``Host`` from the URL rather than from the address."""
        super().putrequest(method, url, skip_host=True, skip_accept_encoding=skip_accept_encoding)
        if not skip_host:
            self.putheader("Host", self._host_header)


class _PinnedHTTPSConnection(_PinnedHTTPConnection, http.client.HTTPSConnection):
    """As :class:`_PinnedHTTPConnection`, with TLS checked against the URL's host name."""

    def __init__(
        self, address: str, port: int, host_header: str, server_name: str | None, timeout: float
    ) -> None:
        super().__init__(address, port, host_header, timeout)
        self._server_name = server_name
        self._tls = ssl.create_default_context()

    def connect(self) -> None:
        """TCP to the address, then TLS naming the URL's host (SNI and certificate check)."""
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)
