"""End-to-end checks of a deployed segserve, run by ``make container-test``.

    check_deployment.py same-batch URL_A URL_B
        one batch fetched from both servers is byte-identical.
    check_deployment.py epoch URL [URL ...] [--save-digests F] [--expect-digests F]
        an epoch streamed (with failover across the URLs) covers every usable
        sample exactly once, and each frame equals the batch endpoint's answer.
    check_deployment.py epoch URL [URL ...] --kill-after K --replica NAME=ADDR ...
        the same, while the replica serving the stream is killed after K frames.
    check_deployment.py client-epoch URL URL --kill-after K --replica NAME=ADDR ...
        the same through the project's client (``segserve_client.SegClient``).

Apart from ``client-epoch``, standard library only (``http.client`` and the
wire framing of the API: an 8-byte little-endian length, then one safetensors
batch), so that it judges the server independently of the project's own
client. Every loop is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import shlex
import struct
import subprocess
import sys
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMEOUT = 60.0
MAX_RESUMES = 8
LENGTH = struct.Struct("<Q")


class CheckFailedError(Exception):
    """A property of the deployment does not hold."""


class StreamBrokenError(Exception):
    """The epoch stream ended before its last frame."""


def log(message: str) -> None:
    print(f"[check] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Params:
    """The batch parameters every check uses."""

    split: str
    height: int
    width: int
    batch_size: int
    seed: int
    epoch: int

    def query(self, **extra: Any) -> dict[str, Any]:
        return {
            "height": self.height,
            "width": self.width,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "drop_last": "false",
            **extra,
        }


class Server:
    """One base URL, one keep-alive connection."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"not an http:// URL: {url}")
        self.url = url
        self.host = parts.hostname
        self.port = parts.port or 80
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._conn: http.client.HTTPConnection | None = None

    def open(self, path: str, query: dict[str, Any] | None = None) -> http.client.HTTPResponse:
        """Send a GET; the caller reads the response (and must read it to the end)."""
        if query:
            path = f"{path}?{urllib.parse.urlencode(query)}"
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        try:
            self._conn.request("GET", path, headers=self.headers)
            return self._conn.getresponse()
        except (OSError, http.client.HTTPException):
            self.close()
            raise

    def get(self, path: str, query: dict[str, Any] | None = None) -> bytes:
        """The body of a 200 response."""
        response = self.open(path, query)
        body = response.read()
        if response.status != 200:
            raise CheckFailedError(f"GET {self.url}{path}: {response.status} {body[:300]!r}")
        return body

    def json(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return json.loads(self.get(path, query))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def parse_batch(body: bytes) -> tuple[dict[str, str], list[int], str]:
    """The metadata, the ``index`` tensor (int64) and the tensors' digest of a batch."""
    if len(body) < LENGTH.size:
        raise CheckFailedError("batch shorter than its header length")
    (header_len,) = LENGTH.unpack_from(body)
    header = json.loads(body[LENGTH.size : LENGTH.size + header_len])
    data = memoryview(body)[LENGTH.size + header_len :]
    info = header.get("index")
    if info is None or info["dtype"] != "I64" or len(info["shape"]) != 1:
        raise CheckFailedError(f"tensor 'index' is not int64 (N,): {info}")
    begin, end = info["data_offsets"]
    count = info["shape"][0]
    if end - begin != 8 * count or end > len(data):
        raise CheckFailedError(f"tensor 'index' has bad offsets {info['data_offsets']}")
    indices = list(struct.unpack_from(f"<{count}q", data, begin))
    for name in ("image", "label"):
        if name not in header:
            raise CheckFailedError(f"batch has no tensor {name!r}")
        if header[name]["shape"][0] != count:
            raise CheckFailedError(
                f"tensor {name!r} has {header[name]['shape'][0]} rows, not {count}"
            )
    tensors = {
        name: (info["shape"], data[info["data_offsets"][0] : info["data_offsets"][1]])
        for name, info in header.items()
        if name != "__metadata__"
    }
    return header.get("__metadata__", {}), indices, tensor_digest(tensors)


def tensor_digest(tensors: dict[str, tuple[list[int], Any]]) -> str:
    """SHA-256 of each tensor's name, shape and bytes: equal for equal batches,
    however they were framed or decoded (raw bodies here, the client's arrays)."""
    hasher = hashlib.sha256()
    for name in sorted(tensors):
        shape, buffer = tensors[name]
        hasher.update(f"{name}{list(shape)}".encode())
        hasher.update(buffer)
    return hasher.hexdigest()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def batch_path(params: Params) -> str:
    return f"/v1/splits/{params.split}/batches"


def same_batch(servers: list[Server], params: Params, batch: int) -> None:
    """Check 1: the same batch from every server, byte for byte."""
    query = params.query(epoch=params.epoch)
    bodies = [s.get(f"{batch_path(params)}/{batch}", query) for s in servers]
    for server, body in zip(servers, bodies, strict=True):
        _, indices, _ = parse_batch(body)
        log(
            f"{server.url}: batch {batch}, {len(body)} bytes, {len(indices)} samples, "
            f"sha256 {digest(body)[:16]}"
        )
    if len({digest(body) for body in bodies}) != 1:
        raise CheckFailedError("the servers answered different bytes for the same batch")
    log(f"OK: batch {batch} is byte-identical from {len(servers)} servers")


def usable_indices(server: Server, params: Params) -> tuple[set[int], int]:
    """The samples that pass the crop filter (from each sample's size), and the batch count."""
    query = {
        "height": params.height,
        "width": params.width,
        "batch_size": params.batch_size,
        "drop_last": "false",
        "small": "drop",
    }
    info = server.json(f"/v1/splits/{params.split}", query)
    usable = set()
    for index in range(info["size"]):
        sample = server.json(f"/v1/splits/{params.split}/samples/{index}")
        if sample["height"] >= params.height and sample["width"] >= params.width:
            usable.add(index)
    if len(usable) != info["usable"]:
        raise CheckFailedError(
            f"split says {info['usable']} usable, sample sizes say {len(usable)}"
        )
    expected_batches = -(-len(usable) // params.batch_size)
    if info["batches"] != expected_batches:
        raise CheckFailedError(f"split says {info['batches']} batches, expected {expected_batches}")
    log(
        f"{params.split}: {info['size']} samples, {len(usable)} usable at "
        f"{params.height}x{params.width}, {info['batches']} batches of {params.batch_size}"
    )
    return usable, info["batches"]


@dataclass
class Killer:
    """Kills the replica that serves the stream once enough frames have arrived."""

    after: int
    replicas: dict[str, str]  # address -> container name
    command: list[str]
    killed: str | None = None
    killed_at: int = 0  # frames received when the kill was sent
    broke_at: int | None = None  # frames received when the stream broke after it

    def maybe_kill(self, received: int, served_by: str) -> None:
        if self.killed is not None or received < self.after:
            return
        name = self.replicas.get(served_by)
        if name is None:
            raise CheckFailedError(f"stream served by {served_by}, not one of {self.replicas}")
        log(f"killing {name} ({served_by}) after {received} frames: {' '.join(self.command)}")
        started = time.monotonic()
        subprocess.run([*self.command, name], check=True, capture_output=True, timeout=60)
        log(f"{name} killed ({time.monotonic() - started:.1f} s)")
        self.killed = name
        self.killed_at = received


@dataclass
class Epoch:
    """What arrived: one body per batch number, and which server sent which run of them."""

    bodies: dict[int, bytes] = field(default_factory=dict)
    segments: list[str] = field(default_factory=list)


def frames(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The frames of an epoch stream; StreamBrokenError if it stops inside one, or short of
    its Content-Length (a raw stream has one: ``http.client`` then reads b"" at a premature
    end instead of raising, so a replica killed between two frames looks like a clean end)."""
    while True:
        try:
            head = response.read(LENGTH.size)
            if not head:
                if response.length:  # bytes of the declared length still to come
                    raise StreamBrokenError(
                        f"stream ended {response.length} bytes short of its Content-Length"
                    )
                return
            if len(head) != LENGTH.size:
                raise StreamBrokenError("stream ended inside a frame length")
            (length,) = LENGTH.unpack(head)
            body = response.read(length)
        except (OSError, http.client.HTTPException) as error:
            raise StreamBrokenError(f"{type(error).__name__}: {error}") from error
        if len(body) != length:
            raise StreamBrokenError(f"frame cut at {len(body)} of {length} bytes")
        yield body


def served_by(server: Server, response: http.client.HTTPResponse) -> str:
    """The replica address behind a response: nginx's X-Upstream-Addr, else the server itself."""
    upstream = response.getheader("X-Upstream-Addr")
    if upstream:
        return upstream.split(",")[-1].strip().rsplit(":", 1)[0]
    return server.host


def stream_epoch(servers: list[Server], params: Params, total: int, killer: Killer | None) -> Epoch:
    """Stream batches 0..total-1; when a stream breaks, ask the next server for the rest.

    The resumed request names the first missing batch (``start``): batches are a
    pure function of their parameters, so any replica sends the same bytes.
    """
    epoch = Epoch()
    path = f"/v1/splits/{params.split}/epochs/{params.epoch}"
    attempt = 0
    while len(epoch.bodies) < total:
        if attempt > MAX_RESUMES:
            raise CheckFailedError(f"gave up after {MAX_RESUMES} resumptions")
        server = servers[attempt % len(servers)]
        start = len(epoch.bodies)
        try:
            _stream_from(server, path, params.query(start=start, stop=total), epoch, killer)
        except (StreamBrokenError, OSError, http.client.HTTPException) as error:
            server.close()
            if killer is not None and killer.killed is not None and killer.broke_at is None:
                killer.broke_at = len(epoch.bodies)
            log(
                f"{server.url}: stream broke at batch {len(epoch.bodies)} ({error}); "
                "resuming on the next server"
            )
            attempt += 1
            time.sleep(0.2 * attempt)
            continue
        if len(epoch.bodies) < total:
            raise CheckFailedError(
                f"stream from {server.url} ended cleanly after "
                f"{len(epoch.bodies)} of {total} batches"
            )
    return epoch


def _stream_from(
    server: Server, path: str, query: dict[str, Any], epoch: Epoch, killer: Killer | None
) -> None:
    response = server.open(path, query)
    if response.status != 200:
        body = response.read()
        problem = f"GET {server.url}{path}: {response.status} {body[:300]!r}"
        # 5xx (a replica loading, overloaded, or nginx finding none) is worth a retry.
        raise StreamBrokenError(problem) if response.status >= 500 else CheckFailedError(problem)
    address = served_by(server, response)
    epoch.segments.append(f"batches {len(epoch.bodies)}.. from {server.url} via {address}")
    for body in frames(response):
        epoch.bodies[len(epoch.bodies)] = body
        if killer is not None:
            killer.maybe_kill(len(epoch.bodies), address)


def check_epoch(epoch: Epoch, params: Params, usable: set[int], total: int) -> Digests:
    """Coverage: every usable sample exactly once, batches in order; returns the digests."""
    digests = Digests()
    seen: Counter[int] = Counter()
    for number in range(total):
        metadata, indices, tensors = parse_batch(epoch.bodies[number])
        if metadata.get("batch", str(number)) != str(number):
            raise CheckFailedError(f"frame {number} says it is batch {metadata.get('batch')}")
        if metadata.get("epoch", str(params.epoch)) != str(params.epoch):
            raise CheckFailedError(f"frame {number} says it is of epoch {metadata.get('epoch')}")
        seen.update(indices)
        digests.bodies.append(digest(epoch.bodies[number]))
        digests.tensors.append(tensors)
    check_coverage(seen, usable, total)
    return digests


def check_coverage(seen: Counter[int], usable: set[int], total: int) -> None:
    repeated = sorted(i for i, n in seen.items() if n > 1)
    missing = sorted(usable - seen.keys())
    extra = sorted(seen.keys() - usable)
    if repeated or missing or extra:
        raise CheckFailedError(
            f"coverage: repeated {repeated[:10]}, missing {missing[:10]}, not usable {extra[:10]}"
        )
    log(f"OK: {total} batches cover all {len(usable)} usable samples exactly once")


@dataclass
class Digests:
    """Per batch of an epoch: SHA-256 of the body, and of its tensors."""

    bodies: list[str] = field(default_factory=list)
    tensors: list[str] = field(default_factory=list)

    def save(self, path: str | None) -> None:
        if path:
            Path(path).write_text(json.dumps({"bodies": self.bodies, "tensors": self.tensors}))

    def expect(self, path: str | None, kind: str) -> None:
        """Compare with a saved epoch: ``kind`` "bodies" (bytes) or "tensors" (arrays)."""
        if not path:
            return
        expected = json.loads(Path(path).read_text())[kind]
        ours = getattr(self, kind)
        if ours != expected:
            differ = [n for n, (a, b) in enumerate(zip(ours, expected, strict=False)) if a != b]
            raise CheckFailedError(
                f"{len(ours)} batches vs {len(expected)} in the reference epoch; "
                f"batches {differ[:10]} differ"
            )
        log(f"OK: the epoch's {kind} are identical to the reference epoch's")


def check_against_batches(server: Server, epoch: Epoch, params: Params, total: int) -> None:
    """Frames equal the batch endpoint's answers (first, middle, last)."""
    for number in sorted({0, total // 2, total - 1}):
        body = server.get(f"{batch_path(params)}/{number}", params.query(epoch=params.epoch))
        if body != epoch.bodies[number]:
            raise CheckFailedError(f"frame {number} differs from GET .../batches/{number}")
    log("OK: stream frames equal the batch endpoint's answers")


def run_epoch(args: argparse.Namespace, params: Params) -> None:
    servers = [Server(url, args.token) for url in args.urls]
    usable, total = usable_indices(servers[0], params)
    killer = None
    if args.kill_after is not None:
        replicas = {addr: name for name, addr in (item.split("=", 1) for item in args.replica)}
        killer = Killer(args.kill_after, replicas, shlex.split(args.kill_command))
    started = time.monotonic()
    epoch = stream_epoch(servers, params, total, killer)
    elapsed = time.monotonic() - started
    size = sum(len(b) for b in epoch.bodies.values())
    log(f"epoch: {size / 1e6:.0f} MB in {elapsed:.1f} s; " + "; ".join(epoch.segments))
    digests = check_epoch(epoch, params, usable, total)
    if killer is not None:
        if killer.killed is None:
            raise CheckFailedError(
                f"the epoch ended before frame {args.kill_after}: nothing killed"
            )
        if killer.broke_at is None:
            raise CheckFailedError(
                f"killing {killer.killed} after frame {killer.killed_at} did not interrupt "
                "the stream (the rest of the epoch was already buffered)"
            )
        log(
            f"OK: {killer.killed} killed after frame {killer.killed_at}, the stream broke at "
            f"frame {killer.broke_at}, the epoch completed on another replica"
        )
    else:
        check_against_batches(servers[-1], epoch, params, total)
    digests.save(args.save_digests)
    digests.expect(args.expect_digests, "bodies")


def run_client_epoch(args: argparse.Namespace, params: Params) -> None:
    """The project's client (``segserve_client.SegClient``) over several replicas.

    The client starts an epoch on its first replica (round robin from batch 0):
    that one is killed after ``--kill-after`` batches. A long back-off keeps a
    failed replica marked down, so that the end of the run can tell whether the
    client saw the failure.
    """
    from segserve_client import BatchRequest, SegClient  # the project's venv

    usable, total = usable_indices(Server(args.urls[0], args.token), params)
    replicas = {addr: name for name, addr in (item.split("=", 1) for item in args.replica)}
    first = urllib.parse.urlsplit(args.urls[0]).hostname or ""
    killer = Killer(args.kill_after, replicas, shlex.split(args.kill_command))
    digests, seen = Digests(), Counter[int]()
    with SegClient(args.urls, args.token, backoff=120.0, max_backoff=120.0) as client:
        request = BatchRequest(
            params.height, params.width, batch_size=params.batch_size, seed=params.seed,
            drop_last=False,
        )  # fmt: skip
        stream = client.stream_epoch(params.split, params.epoch, request)
        for number, batch in enumerate(stream):
            if batch.metadata.get("batch", str(number)) != str(number):
                raise CheckFailedError(f"batch {number} says it is {batch.metadata['batch']}")
            seen.update(int(i) for i in batch.index)
            tensors = {name: (list(a.shape), a.tobytes()) for name, a in batch.items()}
            digests.tensors.append(tensor_digest(tensors))
            killer.maybe_kill(number + 1, first)
        healthy = client.replicas.healthy()
    check_coverage(seen, usable, total)
    if killer.killed is None:
        raise CheckFailedError(f"the epoch ended before batch {args.kill_after}: nothing killed")
    if healthy[0]:
        raise CheckFailedError(f"the client never saw {killer.killed} fail")
    log(
        f"OK: {killer.killed} killed after batch {killer.killed_at}; the client failed over "
        "and completed the epoch"
    )
    digests.expect(args.expect_digests, "tensors")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--split", default="train")
    common.add_argument("--height", type=int, default=320)
    common.add_argument("--width", type=int, default=480)
    common.add_argument("--batch-size", type=int, default=64)
    common.add_argument("--seed", type=int, default=7)
    common.add_argument("--epoch", type=int, default=3)
    common.add_argument("--token", help="bearer token, when the servers want one")
    commands = root.add_subparsers(dest="command", required=True)

    same = commands.add_parser("same-batch", parents=[common], help="byte-identical batch")
    same.add_argument("urls", nargs=2)
    same.add_argument("--batch", type=int, default=1)

    epoch = commands.add_parser("epoch", parents=[common], help="epoch coverage")
    epoch.add_argument("urls", nargs="+", help="servers, tried in turn when a stream breaks")
    epoch.add_argument("--kill-after", type=int, help="frames before killing the serving replica")
    epoch.add_argument("--replica", action="append", default=[], metavar="NAME=ADDR")
    epoch.add_argument("--kill-command", default="podman kill")
    epoch.add_argument("--save-digests")
    epoch.add_argument("--expect-digests")

    client = commands.add_parser(
        "client-epoch", parents=[common], help="epoch through the project's client, with a kill"
    )
    client.add_argument("urls", nargs="+", help="the replicas' URLs, given to the client")
    client.add_argument("--kill-after", type=int, required=True)
    client.add_argument("--replica", action="append", default=[], metavar="NAME=ADDR")
    client.add_argument("--kill-command", default="podman kill")
    client.add_argument("--expect-digests")
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    params = Params(args.split, args.height, args.width, args.batch_size, args.seed, args.epoch)
    try:
        if args.command == "same-batch":
            same_batch([Server(url, args.token) for url in args.urls], params, args.batch)
        elif args.command == "client-epoch":
            run_client_epoch(args, params)
        else:
            run_epoch(args, params)
    except CheckFailedError as error:
        log(f"FAILED: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
