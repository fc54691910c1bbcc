"""Run by the wheel venv's Python: import the client, fetch, print what was got as JSON.

Imported from nothing of the repository: it must work with only the built
``segserve-client`` wheel (and numpy 2.x, maybe torch) installed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

BANNED = ("fastapi", "starlette", "pydantic", "PIL", "service", "app", "tests")


def digest(data: bytes) -> str:
    """A short content hash."""
    return hashlib.sha256(data).hexdigest()


def main(url: str) -> None:
    import numpy as np
    import segserve_client
    from segserve_client import BatchRequest, SegClient

    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BANNED)
    request = BatchRequest(32, 48, batch_size=4, seed=5, flip=True, scale=(0.5, 2.0))
    bodies = {}
    with SegClient(url) as client:
        for name, batch in (
            ("batch", client.batch("train", 1, request)),
            ("float32", client.batch("train", 2, request, dtype="float32")),
            ("crop", client.crop("train", request, index=5)),
        ):
            assert batch.lease is not None
            bodies[name] = digest(batch.lease.array.tobytes())
    result: dict[str, Any] = {
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "location": segserve_client.__file__,
        "loaded": loaded,
        "bodies": bodies,
    }
    try:
        import torch  # noqa: F401
    except ImportError:
        result["torch"] = None
    else:
        from segserve_client.torch import RemoteVOCSegmentation

        item = next(iter(RemoteVOCSegmentation(url, "train", 32, 48, batch_size=4, seed=5)))
        names = ("image", "label", "index", "rect")
        result["torch"] = digest(b"".join(item[n].numpy().tobytes() for n in names))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
