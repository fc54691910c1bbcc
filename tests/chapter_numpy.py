"""The d2l chapter's colormap, classes, label lookup and crop filter, in NumPy.

The reference the tests check the engine against without MXNet: the chapter's
lists and functions as the chapter writes them (``tests/chapter.py`` holds its
MXNet code verbatim), with ``np`` being NumPy and types added. Nothing here
comes from the code under test.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

VOC_COLORMAP = [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0],
                [0, 0, 128], [128, 0, 128], [0, 128, 128], [128, 128, 128],
                [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0],
                [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128],
                [0, 64, 0], [128, 64, 0], [0, 192, 0], [128, 192, 0],
                [0, 64, 128]]  # fmt: skip

VOC_CLASSES = ['background', 'aeroplane', 'bicycle', 'bird', 'boat',
               'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person',
               'potted plant', 'sheep', 'sofa', 'train', 'tv/monitor']  # fmt: skip


def voc_colormap2label() -> npt.NDArray[np.int64]:
    """Build the mapping from RGB to class indices for VOC labels."""
    colormap2label = np.zeros(256**3, dtype=np.int64)
    for i, colormap in enumerate(VOC_COLORMAP):
        colormap2label[(colormap[0] * 256 + colormap[1]) * 256 + colormap[2]] = i
    return colormap2label


def voc_label_indices(
    colormap: npt.NDArray[np.uint8], colormap2label: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Map any RGB values in VOC labels to their class indices."""
    rgb = colormap.astype(np.int32)
    idx = (rgb[:, :, 0] * 256 + rgb[:, :, 1]) * 256 + rgb[:, :, 2]
    indices: npt.NDArray[np.int64] = colormap2label[idx]
    return indices


def chapter_filter(
    imgs: list[npt.NDArray[np.uint8]], crop_size: tuple[int, int]
) -> list[npt.NDArray[np.uint8]]:
    """The chapter's ``VOCSegDataset.filter``: keep images at least as large as the crop."""
    return [img for img in imgs if (img.shape[0] >= crop_size[0] and img.shape[1] >= crop_size[1])]
