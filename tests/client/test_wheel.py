"""The built segserve-client wheel in a fresh venv (numpy 2.x) gets the same bytes as here.

``make client-wheel-test`` builds the wheel and the venvs and runs this module
with ``SEGSERVE_CLIENT_PYTHONS`` listing their Pythons; without it (a plain
``pytest``) the module is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from segserve_client import BatchRequest, SegClient

from tests.client import wheel_probe
from tests.client.live import LiveServer

PYTHONS = os.environ.get("SEGSERVE_CLIENT_PYTHONS", "").split()
pytestmark = pytest.mark.skipif(
    not PYTHONS, reason="needs the wheel venvs: run `make client-wheel-test`"
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=PYTHONS or [""])
def probe(live: LiveServer, request: pytest.FixtureRequest) -> dict[str, Any]:
    """What a wheel venv's client got from the live server."""
    script = Path(wheel_probe.__file__)
    result = subprocess.run(
        [request.param, "-I", str(script), live.url],  # -I: no repository paths on sys.path
        capture_output=True, text=True, timeout=300, cwd="/", check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got: dict[str, Any] = json.loads(result.stdout)
    return got


def test_the_wheel_is_what_runs(probe: dict[str, Any]) -> None:
    assert not Path(probe["location"]).is_relative_to(ROOT / "client")
    assert "site-packages" in probe["location"]
    assert int(probe["numpy"].split(".")[0]) >= 2


def test_importing_the_client_imports_no_server_code(probe: dict[str, Any]) -> None:
    assert probe["loaded"] == []


def test_bodies_are_byte_identical_to_this_environments(
    probe: dict[str, Any], live: LiveServer
) -> None:
    request = BatchRequest(32, 48, batch_size=4, seed=5, flip=True, scale=(0.5, 2.0))
    with SegClient(live.url) as client:
        here = {
            "batch": client.batch("train", 1, request),
            "float32": client.batch("train", 2, request, dtype="float32"),
            "crop": client.crop("train", request, index=5),
        }
        bodies = {}
        for name, batch in here.items():
            assert batch.lease is not None
            bodies[name] = wheel_probe.digest(batch.lease.array.tobytes())
    assert probe["bodies"] == bodies


def test_torch_items_are_identical_where_torch_is_installed(
    probe: dict[str, Any], live: LiveServer
) -> None:
    if probe["torch"] is None:
        pytest.skip(f"no torch in the Python {probe['python']} wheel venv (no CPU wheel for it)")
    pytest.importorskip("torch", reason="no torch in this environment to compare with")
    from segserve_client.torch import RemoteVOCSegmentation

    item = next(iter(RemoteVOCSegmentation(live.url, "train", 32, 48, batch_size=4, seed=5)))
    names = ("image", "label", "index", "rect")
    here = wheel_probe.digest(b"".join(item[n].numpy().tobytes() for n in names))
    assert probe["torch"] == here
