"""Facts of the data set and the API that server and client must agree on.

The chapter's class names and colormap, the ignore index, the normalisation
statistics and the tensor names of a batch body. Defined here once; the
server's ``service.voc`` re-exports the data-set facts.
"""

from __future__ import annotations

from typing import Final

VOC_CLASSES: Final[tuple[str, ...]] = (
    "background", "aeroplane", "bicycle", "bird", "boat",
    "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person",
    "potted plant", "sheep", "sofa", "train", "tv/monitor",
)  # fmt: skip

VOC_COLORMAP: Final[tuple[tuple[int, int, int], ...]] = (
    (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0),
    (0, 0, 128), (128, 0, 128), (0, 128, 128), (128, 128, 128),
    (64, 0, 0), (192, 0, 0), (64, 128, 0), (192, 128, 0),
    (64, 0, 128), (192, 0, 128), (64, 128, 128), (192, 128, 128),
    (0, 64, 0), (128, 64, 0), (0, 192, 0), (128, 192, 0),
    (0, 64, 128),
)  # fmt: skip

NUM_CLASSES: Final = len(VOC_CLASSES)
IGNORE_INDEX: Final = 255
IGNORE_COLOR: Final = (224, 224, 192)

# The chapter's normalisation (ImageNet statistics), applied as (x / 255 - mean) / std.
RGB_MEAN: Final = (0.485, 0.456, 0.406)
RGB_STD: Final = (0.229, 0.224, 0.225)

# The tensors of a batch body (API.md "Tensors").
TENSOR_NAMES: Final = ("image", "label", "index", "rect")
