"""Epoch streams (``GET /v1/splits/{split}/epochs/{epoch}``) that survive a dying replica.

A package-internal helper of :class:`segserve_client.http.SegClient`. Frames are split
by :func:`segserve_client.protocol.wire.iter_frames_into`, each read in place into a
pooled buffer; a length above :data:`~segserve_client.protocol.wire.MAX_FRAME_BYTES`
is refused. When the stream breaks, it is asked for again from the first batch not
yet delivered (``start`` moved on), on the next healthy replica.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from segserve_client.batch import Batch
from segserve_client.errors import ProtocolError, ServerError, TransportError, is_retryable
from segserve_client.protocol import wire

if TYPE_CHECKING:
    from segserve_client.http import ParamValue, SegClient


def resume_stream(
    client: SegClient, path: str, params: Mapping[str, ParamValue]
) -> Iterator[Batch]:
    """Yield the batches in order, resuming after failures (``client.retries`` in a row)."""
    from segserve_client.http import query_string

    rest = dict(params)
    start = _int(rest.pop("start", None), 0)
    step = _int(rest.pop("step", None), 1)
    failures = 0
    while True:
        i = client.replicas.pick(start)
        target = path + query_string({**rest, "start": start, "step": step})
        try:
            for batch in _frames(client, i, target):
                yield batch
                start += step
                failures = 0
        except (TransportError, ServerError) as error:
            if not is_retryable(error) or failures >= client.retries:
                raise
            failures += 1
            client.replicas.failed(i, getattr(error, "retry_after", None))
            client.pause(client.replicas.wait_time())
            continue
        client.replicas.succeeded(i)
        return


def _frames(client: SegClient, i: int, target: str) -> Iterator[Batch]:
    """The batches of one streaming response from replica ``i``."""
    with client._open(i, target) as response:
        if response.status >= 400:
            raise client._error(response)
        # Each frame is read in place into a pooled buffer (one copy from the socket).
        frames = wire.iter_frames_into(response.raw.readinto, client.pool.acquire)
        while True:
            try:
                frame = next(frames, None)
            except ValueError as error:
                raise TransportError(str(error), url=response.url) from None
            if frame is None:
                return
            try:
                batch = Batch.decode(frame, client.pool.decode_target)
            except ValueError as error:
                raise ProtocolError(f"{response.url}: {error}") from None
            yield batch


def _int(value: ParamValue, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int):
        raise TypeError(f"start and step must be integers, got {value!r}")
    return value
