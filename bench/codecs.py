"""Codec micro-measurement: each transport encoding on batches of natural photographs.

The ``codecs`` phase of the benchmark (``python -m bench --phases codecs``;
``python -m bench.codecs [--batches 4]`` prints the table alone): batches of 64 crops of
320 x 480 cut from the natural set at random offsets (:mod:`bench.natural`, decoded
from the stored JPEG as the server sees them, labels with 255 bands), each encoded and
decoded with :mod:`segserve_client.protocol.encoding` exactly as server and
client do. Reports per encoding the bytes per sample on the wire, encode and
decode milliseconds per batch (one thread; and spread over a pool of two
threads, which shows whether the codecs release the GIL), the JPEG PSNR (also
for the chroma subsampling the wire does not use), and the load average around
the run. Timings are medians over the batches.
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
from segserve_client.protocol.encoding import (
    JPEG_SUBSAMPLING,
    Codec,
    Jpeg,
    Transport,
    Zstd,
    decode_tensors,
    encode_tensors,
)

from bench.natural import natural_crop_samples
from service.source import U8Array

BATCH, HEIGHT, WIDTH = 64, 320, 480
TRANSPORTS = (Transport("raw"), Transport("lossless"), Transport("jpeg"), Transport("jpeg", 90))
# The chroma subsampling the wire does not use, measured beside it (same quality).
OTHER_SUBSAMPLING = "420" if JPEG_SUBSAMPLING != "420" else "444"


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
    """``count`` batches of tensors (image, label, index, rect) from the natural set, each
    crop at a random offset as the server cuts them (:func:`bench.natural.natural_crops`)."""
    samples = natural_crop_samples(count * BATCH, HEIGHT, WIDTH, seed)
    batches = []
    for b in range(count):
        part = samples[b * BATCH : (b + 1) * BATCH]
        batches.append(
            {
                "image": np.stack([image for image, _, _ in part]),
                "label": np.stack([label for _, label, _ in part]),
                "index": np.arange(b * BATCH, (b + 1) * BATCH, dtype=np.int64),
                "rect": np.array([rect for _, _, rect in part], dtype=np.int32),
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


def _subsampling_label(subsampling: str) -> str:
    return ":".join(subsampling)


def measure_transport(
    transport: Transport,
    batches: Sequence[dict[str, Any]],
    pool: ThreadPoolExecutor,
    codecs: dict[str, Codec] | None = None,
) -> CodecRow:
    """Encode and decode every batch with ``transport``, with ``map`` and with ``pool.map``
    (``codecs``: other codec settings than the wire's, see :func:`encode_tensors`)."""
    sizes: list[float] = []
    times: dict[str, list[float]] = {"enc1": [], "enc2": [], "dec1": [], "dec2": []}
    psnr: list[float] = []
    for tensors in batches:
        psnr += _measure_batch(transport, tensors, pool, sizes, times, codecs)
    raw = sum(t.nbytes for t in batches[0].values()) / BATCH
    name: str = transport.encoding
    if psnr:
        jpeg = (codecs or {}).get("image")
        subsampling = jpeg.subsampling if isinstance(jpeg, Jpeg) else JPEG_SUBSAMPLING
        name += f" q{transport.resolved_quality} {_subsampling_label(subsampling)}"
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
    codecs: dict[str, Codec] | None = None,
) -> list[float]:
    """Time one batch's encode and decode (appended to ``times``); its PSNR values (jpeg)."""
    ms, (encoded, metadata) = _timed(lambda: encode_tensors(tensors, transport, map, codecs))
    times["enc1"].append(ms)
    times["enc2"].append(_timed(lambda: encode_tensors(tensors, transport, pool.map, codecs))[0])
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
    """Every encoding of :data:`TRANSPORTS` over ``batch_count`` natural batches, and the
    default JPEG quality with :data:`OTHER_SUBSAMPLING`."""
    load_before = list(os.getloadavg())
    batches = natural_batches(batch_count)
    other: dict[str, Codec] = {"image": Jpeg(subsampling=OTHER_SUBSAMPLING), "label": Zstd()}
    with ThreadPoolExecutor(2) as pool:
        rows = [measure_transport(t, batches, pool) for t in TRANSPORTS]
        beside_default_jpeg = TRANSPORTS.index(Transport("jpeg")) + 1
        rows.insert(beside_default_jpeg, measure_transport(Transport("jpeg"), batches, pool, other))
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
        "set, each at a random offset of its decoded image as the server cuts them; medians "
        f"per batch; {section['cpus']} CPUs, load average {load} before, {load_after} after "
        "(other work was running). The JPEG rows name their chroma subsampling: the wire's "
        f"is {_subsampling_label(JPEG_SUBSAMPLING)}, the other row measures the alternative.",
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
