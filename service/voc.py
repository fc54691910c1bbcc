"""Layout facts of Pascal VOC2012 semantic segmentation, as the d2l chapter states them."""

from __future__ import annotations

from typing import Final

# Defined once in the client's protocol module; re-exported for the server.
from segserve_client.protocol.constants import IGNORE_COLOR as IGNORE_COLOR
from segserve_client.protocol.constants import IGNORE_INDEX as IGNORE_INDEX
from segserve_client.protocol.constants import NUM_CLASSES as NUM_CLASSES
from segserve_client.protocol.constants import RGB_MEAN as RGB_MEAN
from segserve_client.protocol.constants import RGB_STD as RGB_STD
from segserve_client.protocol.constants import VOC_CLASSES as VOC_CLASSES
from segserve_client.protocol.constants import VOC_COLORMAP as VOC_COLORMAP

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
