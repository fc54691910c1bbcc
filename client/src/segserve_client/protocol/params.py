"""The batch and crop parameters' choices and ranges that server and client must agree on.

The server's ``service.params`` validates requests against these, the
client's :class:`~segserve_client.request.BatchRequest` checks its fields
against the same definitions before sending them.
"""

from __future__ import annotations

from typing import Final, Literal

Small = Literal["drop", "pad"]
Void = Literal["ignore", "background"]
Dtype = Literal["uint8", "float32"]
Layout = Literal["nhwc", "nchw"]
CropMode = Literal["random", "center", "full"]

SEED_LIMIT: Final = 2**63  # seeds and epochs are in [0, SEED_LIMIT)
MAX_SCALE: Final = 16.0  # the largest random rescale factor
MAX_CAT_RATIO: Final = 1.0  # cat_max_ratio is in (0, 1]; 1 turns it off


def default_layout(dtype: Dtype) -> Layout:
    """The image layout when none is asked for: ``nhwc`` for uint8, ``nchw`` for float32."""
    return "nhwc" if dtype == "uint8" else "nchw"
