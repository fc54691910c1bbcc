"""segserve's client in a process of its own: batches over loopback HTTP, timed.

Started by :class:`bench.protocol.Probe` as ``python -m bench.client_probe``.
A trainer keeps its client (and its loader) for the whole training, so one
:class:`Trainer` per (url, mode) lives across the rounds: its first epoch
opens the connections and fills the buffer pools, later ones reuse them.
Commands:

``epoch`` (url, mode, epoch, batch_size, height, width)
    ``url``: one server URL, or several separated by commas (the client
    spreads its requests over them). One epoch of the train split, and when
    each batch was in hand (``max_batches``, optional: stop after that many). Modes:
    ``uint8`` (``BatchLoader``: uint8 NHWC numpy arrays), ``stream`` (the
    epoch stream endpoint, uint8), ``gluon-uint8`` and ``gluon-float32``
    (``segserve_client.gluon``'s iterable: float32 NCHW ``mx.nd.NDArray``, normalised
    by the client or by the server).
    ``encoding`` (optional, default ``raw``): the transport encoding asked for.
    ``connections`` (optional, default 1): connections of an epoch stream
    (``stream_epoch(connections=...)``; one per server worker process).
    The uint8 modes release each batch once the next is asked for, as a
    trainer that keeps no batch does (its memory is then reused); the Gluon
    modes' batches are the adapter's, which releases them itself.
``batch_bytes`` (the same fields)
    the size on the wire of one batch of that mode.
``body_bytes`` (the same fields)
    the size of batch 0's HTTP body as the server sends it (encoded or not).
``encodings`` (url, encodings, batch_size, height, width)
    ``raw`` and those of ``encodings`` the server applies (its metadata says
    so) and this client decodes into the arrays ``raw`` gives (same shapes
    and dtypes).
``latency`` (url, start, count, batch_size, height, width)
    ``count`` batches fetched one after another (no prefetch), each timed.
``open_dataset`` (root, cache_dir, repeats)
    ``service.dataset.open_dataset`` on a warm cache, timed in process.
``close``
    close every trainer's connections.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from segserve_client import Batch, BatchRequest, SegClient
from segserve_client.gluon import VOCBatches
from segserve_client.protocol import wire

from bench.protocol import Message, now, serve, stamps_since

SPLIT = "train"
RAW = "raw"
MODES = ("uint8", "stream", "gluon-uint8", "gluon-float32")


def _request(command: Message) -> BatchRequest:
    height, width, batch_size = (int(command[k]) for k in ("height", "width", "batch_size"))
    return BatchRequest(height, width, batch_size=batch_size)


class Trainer:
    """A trainer's side of one delivery mode: a client, and for Gluon its ``VOCBatches``."""

    def __init__(
        self, url: str, mode: str, request: BatchRequest, encoding: str = RAW, connections: int = 1
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        self.connections = connections
        self.request = _encoded(request, encoding)
        self.client = SegClient(url)
        self.gluon: VOCBatches | None = None
        if mode.startswith("gluon-"):
            dtype = "float32" if mode == "gluon-float32" else "uint8"
            # the chapter's labels: border pixels 0, as load_data_voc asks for them
            gluon = self.request.replace(void="background", dtype=dtype)
            self.gluon = VOCBatches(self.client, SPLIT, gluon)
            self.request = gluon

    def epoch(self, number: int) -> Iterator[Any]:
        """The first array of every batch of epoch ``number``, as the trainer gets it."""
        if self.gluon is not None:
            self.gluon.set_epoch(number)
            return _ndarrays(self.gluon)
        if self.mode == "stream":
            connections = self.connections
            return _images(
                self.client.stream_epoch(SPLIT, number, self.request, connections=connections)
            )
        return _images(self.client.loader(SPLIT, self.request.replace(epoch=number)))


def _images(batches: Iterable[Batch]) -> Iterator[Any]:
    """Each batch's image array; the batch is released when the next one is asked for."""
    for batch in batches:
        with batch:
            yield batch.image


def _ndarrays(batches: VOCBatches) -> Iterator[Any]:
    for features, labels in batches:
        features.wait_to_read()
        labels.wait_to_read()
        yield features


class ClientProbe:
    """The commands of this process, over the trainers it has started."""

    def __init__(self) -> None:
        self.trainers: dict[tuple[str, str, str, int], Trainer] = {}

    def trainer(self, command: Message) -> Trainer:
        """The trainer for the command's url and mode, started on first use."""
        url, mode = str(command["url"]), str(command["mode"])
        encoding = str(command.get("encoding", RAW))
        connections = int(command.get("connections", 1))
        key = (url, mode, encoding, connections)
        if key not in self.trainers:
            self.trainers[key] = Trainer(url, mode, _request(command), encoding, connections)
        return self.trainers[key]

    def epoch(self, command: Message) -> Message:
        """One epoch; when each batch was in the trainer's hands."""
        trainer = self.trainer(command)
        stamps: list[float] = []
        samples = 0
        started = now()
        limit = int(command.get("max_batches", 0))
        for features in trainer.epoch(int(command["epoch"])):
            stamps.append(now())
            samples += int(features.shape[0])
            if limit and len(stamps) >= limit:
                break
        return {"samples": samples, "stamps": stamps_since(started, stamps)}

    def batch_bytes(self, command: Message) -> Message:
        """Bytes of one batch of the mode on the wire (safetensors body; stream frame prefix)."""
        trainer = self.trainer(command)
        batch = trainer.client.batch(SPLIT, 0, trainer.request)
        nbytes = wire.encode(batch.tensors, batch.metadata).nbytes
        return {"bytes": nbytes + (8 if trainer.mode == "stream" else 0)}

    def body_bytes(self, command: Message) -> Message:
        """Bytes of batch 0's body as the server sends it for the mode (and encoding)."""
        trainer = self.trainer(command)
        url = str(command["url"]).split(",")[0]
        query = urllib.parse.urlencode(trainer.request.query("batch"))
        with urllib.request.urlopen(f"{url}/v1/splits/{SPLIT}/batches/0?{query}") as answer:
            return {"bytes": len(answer.read())}

    def close(self, _command: Message) -> Message:
        """Close every trainer's connections."""
        for trainer in self.trainers.values():
            trainer.client.close()
        self.trainers.clear()
        return {}


def _encoded(request: BatchRequest, encoding: str) -> BatchRequest:
    """``request`` asking for ``encoding`` (raw: as it is, so that older clients run it)."""
    return request if encoding == RAW else request.replace(encoding=encoding)


def encodings(command: Message) -> Message:
    """``raw`` and the other encodings both sides support, tried on batch 0."""
    request = _request(command)
    supported = [RAW]  # the default, never sent (older servers refuse unknown parameters)
    with SegClient(command["url"]) as client:
        raw = client.batch(SPLIT, 0, request)
        for encoding in [e for e in command["encodings"] if e != RAW]:
            try:
                batch = client.batch(SPLIT, 0, _encoded(request, encoding))
            except Exception:  # an older server or client: not supported
                continue
            same = all(
                batch.tensors[name].shape == raw.tensors[name].shape
                and batch.tensors[name].dtype == raw.tensors[name].dtype
                for name in raw.tensors
            )
            if same and batch.metadata.get("encoding", RAW) == encoding:
                supported.append(encoding)
    return {"encodings": supported}


def latency(command: Message) -> Message:
    """Batches ``start`` .. ``start + count - 1`` of the sequence epoch 0, epoch 1, ...,
    fetched one after another; each request's seconds."""
    seconds: list[float] = []
    start = int(command.get("start", 0))
    with SegClient(command["url"]) as client:
        request = _request(command)
        per_epoch = client.num_batches(SPLIT, request)
        for i in range(start, start + int(command["count"])):
            epoch_number, number = divmod(i, per_epoch)
            started = now()
            client.batch(SPLIT, number, request, epoch=epoch_number)
            seconds.append(now() - started)
    return {"seconds": seconds, "batches_per_epoch": per_epoch}


def open_dataset(command: Message) -> Message:
    """``open_dataset`` on a warm cache, ``repeats`` times in this process."""
    from service.dataset import open_dataset as open_

    seconds: list[float] = []
    decoded = nbytes = 0
    for _ in range(int(command["repeats"])):
        started = now()
        dataset = open_(Path(command["root"]), Path(command["cache_dir"]))
        seconds.append(now() - started)
        decoded, nbytes = decoded + dataset.stats.decoded, dataset.stats.nbytes
    return {"seconds": seconds, "decoded": decoded, "nbytes": nbytes}


def _hello() -> Message:
    started = now()
    import mxnet  # noqa: F401  (imported up front, as a trainer has it)

    return {"import_s": now() - started}


def main() -> None:
    """Serve the client's measurements over the probe protocol."""
    probe = ClientProbe()
    handlers = {
        "epoch": probe.epoch,
        "batch_bytes": probe.batch_bytes,
        "body_bytes": probe.body_bytes,
        "encodings": encodings,
        "close": probe.close,
        "latency": latency,
        "open_dataset": open_dataset,
    }
    serve(_hello, handlers)


if __name__ == "__main__":
    main()
