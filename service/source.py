"""What the sampling stages need from a split: sizes and decoded arrays.

The decoded cache (`service.cache`) implements this over memory-mapped files;
tests implement it over in-memory arrays.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

U8Array = npt.NDArray[np.uint8]


class SplitSource(Protocol):
    """One split: the samples listed in ``ImageSets/Segmentation/<name>.txt`` that decoded.

    Sample ``i`` is the i-th usable line of the split file (excluded files removed),
    in file order.
    """

    @property
    def name(self) -> str:
        """The split's name (the split file's stem)."""
        ...

    @property
    def ids(self) -> list[str]:
        """Sample names (``NAME`` of ``JPEGImages/NAME.jpg``), in split order."""
        ...

    @property
    def heights(self) -> npt.NDArray[np.int32]:
        """Image height of each sample."""
        ...

    @property
    def widths(self) -> npt.NDArray[np.int32]:
        """Image width of each sample."""
        ...

    def image(self, index: int) -> U8Array:
        """Decoded RGB image, (H, W, 3) uint8, read-only (may be a view into a shared map)."""
        ...

    def label(self, index: int) -> U8Array:
        """Decoded class indices, (H, W) uint8, 255 = border/ignore; read-only."""
        ...
