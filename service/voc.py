"""Layout facts of Pascal VOC2012 semantic segmentation, as the d2l chapter states them."""

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

IMAGE_DIR: Final = "JPEGImages"
LABEL_DIR: Final = "SegmentationClass"
SPLIT_DIR: Final = "ImageSets/Segmentation"
IMAGE_SUFFIX: Final = ".jpg"
LABEL_SUFFIX: Final = ".png"

# Where `segserve download` puts the archive's content below its target folder.
VOC_SUBDIR: Final = "VOCdevkit/VOC2012"
VOC_URL: Final = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
VOC_SHA1: Final = "4e443f8a2eca6b1dac8a6c57641b67dd40621a49"


def voc_palette() -> list[int]:
    """The 768-entry PNG palette of VOC labels: the colormap, then black; 255 = ignore colour."""
    palette = [c for color in VOC_COLORMAP for c in color]
    palette += [0] * (768 - len(palette))
    palette[3 * IGNORE_INDEX : 3 * IGNORE_INDEX + 3] = IGNORE_COLOR
    return palette
