"""Response bodies of the JSON endpoints, with the examples Swagger UI shows."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from service.voc import IGNORE_COLOR, IGNORE_INDEX, RGB_MEAN, RGB_STD, VOC_CLASSES, VOC_COLORMAP

# Fixed-length lists rather than tuples: tuples become `prefixItems`, which some OpenAPI
# tools do not read.
RGB = Annotated[list[Annotated[int, Field(ge=0, le=255)]], Field(min_length=3, max_length=3)]
Triple = Annotated[list[float], Field(min_length=3, max_length=3)]
Rect = Annotated[list[int], Field(min_length=4, max_length=4)]


class Status(BaseModel):
    """Liveness or readiness."""

    status: str = Field(examples=["ok"])


class SplitSize(BaseModel):
    """A split's name and number of samples."""

    name: str = Field(examples=["train"])
    size: int = Field(ge=0, examples=[1464])


class ExcludedFile(BaseModel):
    """A sample left out of every split because a file of it could not be decoded."""

    name: str = Field(examples=["2007_000032"])
    reason: str = Field(examples=["SegmentationClass/2007_000032.png: cannot identify image file"])


class DatasetInfo(BaseModel):
    """What the server serves: classes, normalisation, splits, and what was skipped."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "VOC2012",
                    "num_classes": 21,
                    "ignore_index": 255,
                    "mean": list(RGB_MEAN),
                    "std": list(RGB_STD),
                    "splits": [{"name": "train", "size": 1464}, {"name": "val", "size": 1449}],
                    "excluded_count": 0,
                    "excluded": [],
                }
            ]
        }
    )

    name: str = Field(description="Name of the data root folder.")
    num_classes: int = Field(description="Number of classes (21 with background).")
    ignore_index: int = Field(description="Label value of border and unknown pixels.")
    mean: Triple = Field(description="Per-channel mean of normalisation.")
    std: Triple = Field(description="Per-channel std of normalisation.")
    splits: list[SplitSize] = Field(description="Every split, in name order.")
    excluded_count: int = Field(description="Samples skipped because a file failed to decode.")
    excluded: list[ExcludedFile] = Field(description="The skipped samples, and why.")


class ClassInfo(BaseModel):
    """One class: its index (the label value), its name and its colormap colour."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"index": 1, "name": "aeroplane", "color": [128, 0, 0]}]}
    )

    index: int = Field(ge=0, le=len(VOC_CLASSES) - 1)
    name: str
    color: RGB


class Colormap(BaseModel):
    """The colour of each class index, and of the ignore value."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "colors": [list(c) for c in VOC_COLORMAP],
                    "ignore_index": IGNORE_INDEX,
                    "ignore_color": list(IGNORE_COLOR),
                }
            ]
        }
    )

    colors: list[RGB] = Field(description="colors[i] is the colour of class i.")
    ignore_index: int
    ignore_color: RGB


class SplitInfo(BaseModel):
    """A split's size, and how many samples and batches a crop size and batch size give."""

    name: str = Field(examples=["train"])
    size: int = Field(description="Samples in the split.", examples=[1464])
    usable: int = Field(
        description="Samples a height x width crop can use (all of them with small=pad; "
        "under crop_mode=full, those that fit the canvas).",
        examples=[1114],
    )
    batches: int = Field(
        description="Batches per epoch for batch_size and drop_last.", examples=[17]
    )


class SampleInfo(BaseModel):
    """One sample of a split."""

    index: int = Field(description="Position in the split.", examples=[0])
    id: str = Field(description="File name stem in JPEGImages/.", examples=["2007_000032"])
    height: int = Field(examples=[281])
    width: int = Field(examples=[500])


class LabelArray(BaseModel):
    """A label as JSON: class indices, one list per row."""

    height: int = Field(examples=[2])
    width: int = Field(examples=[3])
    data: list[list[int]] = Field(examples=[[[0, 0, 15], [0, 255, 15]]])


class CropArrays(BaseModel):
    """A crop pair as JSON (small crops only; use safetensors for training)."""

    index: int = Field(description="Sample index within the split.", examples=[3])
    rect: Rect = Field(
        description="top, left, height, width of the crop in the (rescaled) source.",
        examples=[[10, 20, 2, 2]],
    )
    seed: int = Field(examples=[7])
    image: list[list[list[float]]] = Field(
        description="The image as rows of pixels (HWC) or channels of rows (CHW), per layout.",
        examples=[[[[120, 64, 30], [121, 66, 31]], [[119, 60, 28], [118, 61, 29]]]],
    )
    label: list[list[int]] = Field(examples=[[[0, 15], [255, 15]]])


class ClassCount(BaseModel):
    """One class over a split: its pixels, the images it occurs in, its balancing weight."""

    index: int = Field(ge=0, le=len(VOC_CLASSES) - 1, examples=[15])
    name: str = Field(examples=["person"])
    pixels: int = Field(ge=0, description="Pixels of this class in the split's labels.")
    images: int = Field(ge=0, description="Images whose label contains the class.")
    weight: float | None = Field(
        description="Median-frequency-balancing weight; null when the class never occurs.",
        examples=[1.37],
    )


class SplitStatistics(BaseModel):
    """Exact counts over a split's whole labels (no crop), and median-frequency weights."""

    split: str = Field(examples=["train"])
    images: int = Field(ge=0, description="Images of the split.", examples=[1464])
    pixels: int = Field(ge=0, description="Pixels of all their labels.")
    ignore_pixels: int = Field(ge=0, description="Pixels labelled 255 (borders, difficult).")
    classes: list[ClassCount] = Field(description="The 21 classes, by index.")


class PixelCount(BaseModel):
    """How many pixels of one class a sample's label has."""

    index: int = Field(ge=0, le=len(VOC_CLASSES) - 1, examples=[15])
    pixels: int = Field(ge=1, examples=[20388])


class SampleClasses(BaseModel):
    """One sample and the classes its label contains."""

    index: int = Field(description="Position in the split.", examples=[0])
    id: str = Field(examples=["2007_000032"])
    height: int = Field(examples=[281])
    width: int = Field(examples=[500])
    classes: list[PixelCount] = Field(description="Classes present, by index, with pixels.")
    ignore_pixels: int = Field(ge=0, description="Pixels labelled 255.")


class SampleList(BaseModel):
    """A page of a split's samples that contain every requested class."""

    split: str = Field(examples=["train"])
    classes: list[int] = Field(description="The classes asked for (all must occur).")
    total: int = Field(ge=0, description="Samples matching, over the whole split.")
    offset: int = Field(ge=0)
    limit: int = Field(ge=1)
    samples: list[SampleClasses]
