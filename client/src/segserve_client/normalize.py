"""The chapter's image normalisation, done on the trainer's side.

``(x / 255 - mean) / std`` per channel, from uint8 NHWC (what the server sends
by default, a quarter of the bytes of float32) to float32 NCHW (what the
chapter's network takes).

Measured on a 64 x 320 x 480 batch (2-core machine): the chapter's expression in
numpy 266 ms; a 256-entry lookup table per channel with ``np.take`` 68-76 ms
(bit-identical to the chapter's float32 arithmetic); a multiply and an add per
channel, within 4.8e-7 of the chapter's values: 15.9 ms reading the interleaved
uint8 channels, 11.5 ms after one converting, de-interleaving
copy, as here. Working sample by sample keeps source and destination in cache
between the passes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from segserve_client.protocol.normalize import normalize_sample

F32Array = npt.NDArray[np.float32]
U8Array = npt.NDArray[np.uint8]


def normalize(images: U8Array, out: F32Array | None = None) -> F32Array:
    """Normalise uint8 images (N, H, W, 3) into float32 (N, 3, H, W).

    ``out``, when given, must be a float32 array of shape (N, 3, H, W); it is
    filled and returned, so a training loop can reuse one allocation. The
    values are the server's float32 batches' to the bit (one shared function).
    """
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    n, h, w, _ = images.shape
    if out is None:
        out = np.empty((n, 3, h, w), dtype=np.float32)
    elif out.dtype != np.float32 or out.shape != (n, 3, h, w):
        raise ValueError(f"out must be float32 {(n, 3, h, w)}, got {out.dtype} {out.shape}")
    for i in range(n):
        normalize_sample(images[i], out[i])
    return out


def labels_as_float(labels: U8Array, out: F32Array | None = None) -> F32Array:
    """Class indices as float32, the dtype of the chapter's ``voc_label_indices`` output."""
    if out is None:
        return labels.astype(np.float32)
    np.copyto(out, labels, casting="unsafe")
    return out
