"""The chapter's image normalisation ``(x / 255 - mean) / std``, as one multiply-add.

Shared by the server (float32 batches) and the client (uint8 batches
normalised on the trainer's side), so both give the same float32 values.
Only numpy: the client imports it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from segserve_client.protocol.constants import RGB_MEAN, RGB_STD

_STD = np.asarray(RGB_STD, dtype=np.float64)
# x * NORM_SCALE + NORM_OFFSET == (x / 255 - mean) / std, per RGB channel.
NORM_SCALE: Final = (1.0 / (255.0 * _STD)).astype(np.float32)
NORM_OFFSET: Final = (-np.asarray(RGB_MEAN, dtype=np.float64) / _STD).astype(np.float32)


def normalize_sample(image: npt.NDArray[np.uint8], out: npt.NDArray[np.float32]) -> None:
    """Normalise one uint8 (H, W, 3) image into the float32 (3, H, W) array ``out``.

    Channel by channel, so source and destination stay in cache between the
    multiply and the add.
    """
    for c in range(3):
        np.multiply(image[..., c], NORM_SCALE[c], out=out[c], dtype=np.float32)
        np.add(out[c], NORM_OFFSET[c], out=out[c])
