"""Codec micro-measurement: each transport encoding on batches of natural photographs.

The ``codecs`` phase of the benchmark (``python -m bench --phases codecs``;
``python -m bench.codecs [--batches 4]`` prints the table alone): batches of 64 crops of
320 x 480 cut from the natural set (:mod:`bench.natural`, decoded from the
stored JPEG as the server sees them, labels with 255 bands), each encoded and
decoded with :mod:`segserve_client.protocol.encoding` exactly as server and
client do. Reports per encoding the bytes per sample on the wire, encode and
decode milliseconds per batch (one thread; and spread over a pool of two
threads, which shows whether the codecs release the GIL), the JPEG PSNR, and
the load average around the run. Timings are medians over the batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from segserve_client.protocol import wire
from segserve_client.protocol.encoding import Transport, decode_tensors, encode_tensors

from bench.natural import decode_jpeg, encode_jpeg, natural_sample
from service.source import U8Array

BATCH, HEIGHT, WIDTH = 64, 320, 480
TRANSPORTS = (Transport("raw"), Transport("lossless"), Transport("jpeg"), Transport("jpeg", 90))


@dataclass
class CodecRow:
    """One encoding's figures over the measured batches."""

    encoding: str
    bytes_per_sample: float
    ratio: float
    encode_ms: float
    encode_ms_2_threads: float
    decode_ms: float
    decode_ms_2_threads: float
    psnr_min: float | None = None
    psnr_mean: float | None = None


def natural_batches(count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` batches of tensors (image, label, index, rect) from the natural set."""
    images: list[U8Array] = []
    labels: list[U8Array] = []
    index = 0
    while len(images) < count * BATCH:
        image, label = natural_sample(seed, index)
        index += 1
        image = decode_jpeg(encode_jpeg(image))  # what the server decodes from JPEGImages/
        if image.shape[0] >= HEIGHT and image.shape[1] >= WIDTH:
            images.append(image[:HEIGHT, :WIDTH])
            labels.append(label[:HEIGHT, :WIDTH])
    batches = []
    for b in range(count):
        part = slice(b * BATCH, (b + 1) * BATCH)
        batches.append(
            {
                "image": np.stack(images[part]),
                "label": np.stack(labels[part]),
                "index": np.arange(BATCH, dtype=np.int64),
                "rect": np.zeros((BATCH, 4), dtype=np.int32),
            }
        )
    return batches


def _timed(action: Callable[[], object]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return (time.perf_counter() - started) * 1e3, result


def _psnr(reference: U8Array, decoded: U8Array) -> list[float]:
    """Per-sample PSNR in dB (inf for identical samples)."""
    error = (reference.astype(np.float64) - decoded.astype(np.float64)) ** 2
    mse = error.reshape(len(reference), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return [float(v) for v in 10 * np.log10(255.0**2 / mse)]


def measure_transport(
    transport: Transport, batches: Sequence[dict[str, Any]], pool: ThreadPoolExecutor
) -> CodecRow:
    """Encode and decode every batch with ``transport``, with ``map`` and with ``pool.map``."""
    sizes: list[float] = []
    times: dict[str, list[float]] = {"enc1": [], "enc2": [], "dec1": [], "dec2": []}
    psnr: list[float] = []
    for tensors in batches:
        psnr += _measure_batch(transport, tensors, pool, sizes, times)
    raw = sum(t.nbytes for t in batches[0].values()) / BATCH
    name = transport.encoding + (f" q{transport.resolved_quality}" if psnr else "")
    return CodecRow(  # type: ignore[misc]
        name,
        round(statistics.mean(sizes)),
        round(raw / statistics.mean(sizes), 2),
        *(round(statistics.median(v), 1) for v in times.values()),
        psnr_min=round(min(psnr), 1) if psnr else None,
        psnr_mean=round(statistics.mean(psnr), 1) if psnr else None,
    )


def _measure_batch(
    transport: Transport,
    tensors: dict[str, Any],
    pool: ThreadPoolExecutor,
    sizes: list[float],
    times: dict[str, list[float]],
) -> list[float]:
    """Time one batch's encode and decode (appended to ``times``); its PSNR values (jpeg)."""
    ms, (encoded, metadata) = _timed(lambda: encode_tensors(tensors, transport))
    times["enc1"].append(ms)
    times["enc2"].append(_timed(lambda: encode_tensors(tensors, transport, pool.map))[0])
    body = wire.encode(encoded, metadata).tobytes()
    sizes.append(len(body) / BATCH)
    arrays, meta = wire.decode(body)
    ms, decoded = _timed(lambda: decode_tensors(arrays, meta))
    times["dec1"].append(ms)
    times["dec2"].append(_timed(lambda: decode_tensors(arrays, meta, mapper=pool.map))[0])
    if not np.array_equal(decoded["label"], tensors["label"]):
        raise AssertionError(f"{transport.encoding}: labels changed")
    if transport.encoding == "jpeg":
        return _psnr(tensors["image"], decoded["image"])
    if not np.array_equal(decoded["image"], tensors["image"]):
        raise AssertionError(f"{transport.encoding}: images changed")
    return []


def measure_codecs(batch_count: int) -> dict[str, Any]:
    """Every encoding of :data:`TRANSPORTS` over ``batch_count`` natural batches."""
    load_before = list(os.getloadavg())
    batches = natural_batches(batch_count)
    with ThreadPoolExecutor(2) as pool:
        rows = [measure_transport(t, batches, pool) for t in TRANSPORTS]
    return {
        "batch": [BATCH, HEIGHT, WIDTH],
        "batches": batch_count,
        "cpus": len(os.sched_getaffinity(0)),
        "load_before": load_before,
        "load_after": list(os.getloadavg()),
        "rows": [asdict(row) for row in rows],
    }


def codecs_section(section: dict[str, Any]) -> list[str]:
    """The codecs section of results.md (nothing when the phase has not run)."""
    if not section:
        return []
    load = "/".join(f"{v:.2f}" for v in section["load_before"])
    load_after = "/".join(f"{v:.2f}" for v in section["load_after"])
    lines = [
        "",
        "## Codecs (transport encodings on natural photographs)",
        "",
        f"{section['batches']} batches of {BATCH} crops of {HEIGHT} x {WIDTH} from the natural "
        f"set; medians per batch; {section['cpus']} CPUs, load average {load} before, "
        f"{load_after} after (other work was running).",
        "",
        "| encoding | bytes/sample | vs raw | encode ms | encode ms, 2 threads "
        "| decode ms | decode ms, 2 threads | PSNR min / mean dB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in section["rows"]:
        psnr = "" if row["psnr_min"] is None else f"{row['psnr_min']} / {row['psnr_mean']}"
        lines.append(
            f"| {row['encoding']} | {row['bytes_per_sample']:,.0f} | {row['ratio']}x "
            f"| {row['encode_ms']} | {row['encode_ms_2_threads']} | {row['decode_ms']} "
            f"| {row['decode_ms_2_threads']} | {psnr} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the codecs table."""
    parser = argparse.ArgumentParser(prog="python -m bench.codecs", description=__doc__)
    parser.add_argument("--batches", type=int, default=4, help="batches of 64 to measure")
    args = parser.parse_args(argv)
    print("\n".join(codecs_section(measure_codecs(args.batches))))


if __name__ == "__main__":
    main()
