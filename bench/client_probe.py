"""segserve's client in a process of its own: batches over loopback HTTP, timed.

Started by :class:`bench.protocol.Probe` as ``python -m bench.client_probe``.
A trainer keeps its client (and its loader) for the whole training, so one
:class:`Trainer` per (url, mode) lives across the rounds: its first epoch
opens the connections and fills the buffer pools, later ones reuse them.
Commands:

``epoch`` (url, mode, epoch, batch_size, height, width)
    ``url``: one server URL, or several separated by commas (the client
    spreads its requests over them). One epoch of the train split, and when
    each batch was in hand. Modes:
    ``uint8`` (``BatchLoader``: uint8 NHWC numpy arrays), ``stream`` (the
    epoch stream endpoint, uint8), ``gluon-uint8`` and ``gluon-float32``
    (``segserve_client.gluon``'s iterable: float32 NCHW ``mx.nd.NDArray``, normalised
    by the client or by the server).
``batch_bytes`` (the same fields)
    the size on the wire of one batch of that mode.
``latency`` (url, start, count, batch_size, height, width)
    ``count`` batches fetched one after another (no prefetch), each timed.
``open_dataset`` (root, cache_dir, repeats)
    ``service.dataset.open_dataset`` on a warm cache, timed in process.
``close``
    close every trainer's connections.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segserve_client import BatchRequest, SegClient
from segserve_client.gluon import VOCBatches
from segserve_client.protocol import wire

from bench.protocol import Message, now, serve, stamps_since

SPLIT = "train"
MODES = ("uint8", "stream", "gluon-uint8", "gluon-float32")


def _request(command: Message) -> BatchRequest:
    height, width, batch_size = (int(command[k]) for k in ("height", "width", "batch_size"))
    return BatchRequest(height, width, batch_size=batch_size)


class Trainer:
    """A trainer's side of one delivery mode: a client, and for Gluon its ``VOCBatches``."""

    def __init__(self, url: str, mode: str, request: BatchRequest) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self.mode = mode
        self.request = request
        self.client = SegClient(url)
        self.gluon: VOCBatches | None = None
        if mode.startswith("gluon-"):
            dtype = "float32" if mode == "gluon-float32" else "uint8"
            # the chapter's labels: border pixels 0, as load_data_voc asks for them
            gluon = request.replace(void="background", dtype=dtype)
            self.gluon = VOCBatches(self.client, SPLIT, gluon)
            self.request = gluon

    def epoch(self, number: int) -> Iterator[Any]:
        """The first array of every batch of epoch ``number``, as the trainer gets it."""
        if self.gluon is not None:
            self.gluon.set_epoch(number)
            return _ndarrays(self.gluon)
        if self.mode == "stream":
            stream = self.client.stream_epoch(SPLIT, number, self.request)
            return (batch.image for batch in stream)
        loader = self.client.loader(SPLIT, self.request.replace(epoch=number))
        return (batch.image for batch in loader)


def _ndarrays(batches: VOCBatches) -> Iterator[Any]:
    for features, labels in batches:
        features.wait_to_read()
        labels.wait_to_read()
        yield features


class ClientProbe:
    """The commands of this process, over the trainers it has started."""

    def __init__(self) -> None:
        self.trainers: dict[tuple[str, str], Trainer] = {}

    def trainer(self, command: Message) -> Trainer:
        """The trainer for the command's url and mode, started on first use."""
        key = (str(command["url"]), str(command["mode"]))
        if key not in self.trainers:
            self.trainers[key] = Trainer(*key, _request(command))
        return self.trainers[key]

    def epoch(self, command: Message) -> Message:
        """One epoch; when each batch was in the trainer's hands."""
        trainer = self.trainer(command)
        stamps: list[float] = []
        samples = 0
        started = now()
        for features in trainer.epoch(int(command["epoch"])):
            stamps.append(now())
            samples += int(features.shape[0])
        return {"samples": samples, "stamps": stamps_since(started, stamps)}

    def batch_bytes(self, command: Message) -> Message:
        """Bytes of one batch of the mode on the wire (safetensors body; stream frame prefix)."""
        trainer = self.trainer(command)
        batch = trainer.client.batch(SPLIT, 0, trainer.request)
        nbytes = wire.encode(batch.tensors, batch.metadata).nbytes
        return {"bytes": nbytes + (8 if trainer.mode == "stream" else 0)}

    def close(self, _command: Message) -> Message:
        """Close every trainer's connections."""
        for trainer in self.trainers.values():
            trainer.client.close()
        self.trainers.clear()
        return {}


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
        "close": probe.close,
        "latency": latency,
        "open_dataset": open_dataset,
    }
    serve(_hello, handlers)


if __name__ == "__main__":
    main()
