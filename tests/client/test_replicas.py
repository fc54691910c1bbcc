"""ReplicaSet over multi-address names: one replica per address, re-resolved, indices kept."""

from __future__ import annotations

import http.client
import socket

import pytest
from segserve_client.replicas import ReplicaSet
from segserve_client.resolver import AddressReplica, system_resolver
from segserve_client.transport import Replica

URL = "http://segserve-pods.training.svc:8000"


class FakeDns:
    """A resolver whose answers the test sets; counts the look-ups."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.answers[host])


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def addresses(replicas: ReplicaSet) -> list[str]:
    """The addresses of the replicas in rotation, in index order."""
    found = []
    for i, replica in enumerate(replicas.replicas):
        if isinstance(replica, AddressReplica) and i in _active(replicas):
            found.append(replica.address)
    return found


def _active(replicas: ReplicaSet) -> set[int]:
    picked = set()
    for hint in range(4 * len(replicas.replicas)):
        picked.add(replicas.pick(hint))
    return picked


def make(dns: FakeDns, clock: Clock, *urls: str) -> ReplicaSet:
    return ReplicaSet(list(urls) or [URL], resolver=dns, clock=clock, resolve_interval=10.0)


def test_every_address_of_a_name_is_a_replica() -> None:
    dns = FakeDns({"segserve-pods.training.svc": ["10.1.0.5", "10.1.0.6", "10.1.0.7"]})
    replicas = make(dns, Clock())
    assert len(replicas) == 3
    assert [r.address for r in replicas.replicas if isinstance(r, AddressReplica)] == [
        "10.1.0.5",
        "10.1.0.6",
        "10.1.0.7",
    ]
    assert {r.url for r in replicas.replicas} == {URL}
    assert dns.lookups == [("segserve-pods.training.svc", 8000)]


def test_consecutive_hints_spread_over_every_address() -> None:
    dns = FakeDns({"segserve-pods.training.svc": ["10.1.0.5", "10.1.0.6", "10.1.0.7"]})
    replicas = make(dns, Clock())
    assert [replicas.pick(hint) for hint in range(6)] == [0, 1, 2, 0, 1, 2]


def test_a_failed_address_is_skipped_until_its_backoff_ends() -> None:
    clock = Clock()
    replicas = make(FakeDns({"segserve-pods.training.svc": ["10.1.0.5", "10.1.0.6"]}), clock)
    replicas.failed(0)
    assert [replicas.pick(hint) for hint in range(4)] == [1, 1, 1, 1]
    clock.now += replicas.backoff
    assert replicas.pick(0) == 0


def test_re_resolution_adds_new_pods_and_retires_gone_ones() -> None:
    clock = Clock()
    dns = FakeDns({"segserve-pods.training.svc": ["10.1.0.5", "10.1.0.6"]})
    replicas = make(dns, clock)
    dns.answers["segserve-pods.training.svc"] = ["10.1.0.6", "10.1.0.9"]
    clock.now += 9.0
    replicas.pick(0)
    assert len(dns.lookups) == 1  # not due yet
    clock.now += 1.0
    replicas.pick(0)
    assert len(dns.lookups) == 2
    assert len(replicas) == 2
    assert addresses(replicas) == ["10.1.0.6", "10.1.0.9"]
    # Indices handed out before stay valid: 0 is still 10.1.0.5, now retired.
    first = replicas.replicas[0]
    assert isinstance(first, AddressReplica)
    assert first.address == "10.1.0.5"
    assert 0 not in _active(replicas)


def test_a_returning_address_gets_its_old_index_back() -> None:
    clock = Clock()
    dns = FakeDns({"segserve-pods.training.svc": ["10.1.0.5", "10.1.0.6"]})
    replicas = make(dns, clock)
    dns.answers["segserve-pods.training.svc"] = ["10.1.0.6"]
    replicas.refresh()
    dns.answers["segserve-pods.training.svc"] = ["10.1.0.5", "10.1.0.6"]
    replicas.refresh()
    assert len(replicas.replicas) == 2
    assert _active(replicas) == {0, 1}


def test_every_replica_down_re_resolves_early() -> None:
    clock = Clock()
    dns = FakeDns({"segserve-pods.training.svc": ["10.1.0.5"]})
    replicas = make(dns, clock)
    replicas.failed(0, retry_after=30.0)
    dns.answers["segserve-pods.training.svc"] = ["10.1.0.8"]  # the pod was replaced
    clock.now += replicas.min_resolve_interval
    i = replicas.pick(0)
    assert len(dns.lookups) == 2
    replica = replicas.replicas[i]
    assert isinstance(replica, AddressReplica)
    assert replica.address == "10.1.0.8"
    assert replicas.wait_time() == 0.0


def test_a_failed_lookup_keeps_the_last_answer() -> None:
    clock = Clock()
    dns = FakeDns({"segserve-pods.training.svc": ["10.1.0.5", "10.1.0.6"]})
    replicas = make(dns, clock)
    del dns.answers["segserve-pods.training.svc"]  # NXDOMAIN: no ready pod for a moment
    replicas.refresh()
    assert addresses(replicas) == ["10.1.0.5", "10.1.0.6"]


def test_a_name_that_never_resolved_is_asked_by_name_until_it_does() -> None:
    dns = FakeDns({})
    replicas = make(dns, Clock())
    assert replicas.replicas == [Replica(URL)]
    dns.answers["segserve-pods.training.svc"] = ["10.1.0.5"]
    replicas.refresh()
    assert addresses(replicas) == ["10.1.0.5"]
    assert replicas.pick(0) == 1


def test_address_literals_and_several_urls() -> None:
    dns = FakeDns({"b.example": ["10.2.0.1", "10.2.0.2"]})
    replicas = make(dns, Clock(), "http://127.0.0.1:8000", "http://b.example:9000/prefix")
    assert replicas.replicas[0] == Replica("http://127.0.0.1:8000")
    assert len(replicas) == 3
    assert dns.lookups == [("b.example", 9000)]
    assert replicas.replicas[2].target("/v1/dataset") == "/prefix/v1/dataset"


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://segserve-pods.training.svc:8000", "segserve-pods.training.svc:8000"),
        ("http://segserve.example", "segserve.example"),
        ("http://user@segserve.example:81/p", "segserve.example:81"),
    ],
)
def test_the_host_header_names_the_url_not_the_address(url: str, host: str) -> None:
    conn = AddressReplica(url, "127.0.0.2").connect(timeout=1.0)
    assert conn.host == "127.0.0.2"
    sent: list[bytes] = []
    conn.send = sent.append  # type: ignore[method-assign,assignment]
    conn.putrequest("GET", "/readyz")
    conn.endheaders()
    assert f"Host: {host}\r\n".encode() in b"".join(sent)
    assert b"127.0.0.2" not in b"".join(sent)


def test_https_replicas_check_the_certificate_against_the_name() -> None:
    conn = AddressReplica("https://segserve.example", "127.0.0.2").connect(timeout=1.0)
    assert isinstance(conn, http.client.HTTPSConnection)
    assert conn.port == 443
    assert conn._server_name == "segserve.example"  # type: ignore[attr-defined]


def test_system_resolver_keeps_one_family_without_duplicates() -> None:
    found = system_resolver("localhost", 80)
    assert found
    assert len(set(found)) == len(found)
    assert len({":" in address for address in found}) == 1
