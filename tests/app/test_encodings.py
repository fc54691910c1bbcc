"""Encoded batches, crops and epoch streams over HTTP: equal to raw, deterministic, tagged."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segserve_client.protocol import wire
from segserve_client.protocol.encoding import decode_tensors

from app.main import create_app_with_config
from service.config import Settings
from tests.app.conftest import CROP, MakeApp, TestClient, wait_ready

SIZE = f"height={CROP[0]}&width={CROP[1]}"
BATCH = "/v1/splits/train/batches"
ROOT = Path(__file__).resolve().parents[2]


def arrays(content: bytes) -> tuple[dict[str, npt.NDArray[Any]], dict[str, str]]:
    """The raw tensors of a (possibly encoded) body, and its metadata."""
    tensors, metadata = wire.decode(content)
    return decode_tensors(tensors, metadata), metadata


@pytest.fixture(scope="module")
def module_client(
    tmp_path_factory: pytest.TempPathFactory, voc_root: Path, cache_dir: Path
) -> Iterator[TestClient]:
    """One running app for the property test (hypothesis runs many examples per test)."""
    app = create_app_with_config(Settings(data_root=voc_root, cache_dir=cache_dir))
    with TestClient(app) as test_client:
        wait_ready(app)
        yield test_client


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(8, 40),
    width=st.integers(8, 60),
    batch_size=st.integers(1, 5),
    batch=st.integers(0, 2),
    seed=st.integers(0, 1000),
    flip=st.booleans(),
    scale=st.sampled_from(["", "&scale=0.5,2", "&scale=1,1.5"]),
    small=st.sampled_from(["drop", "pad"]),
    void=st.sampled_from(["ignore", "background"]),
)
def test_lossless_equals_raw_byte_for_byte(
    module_client: TestClient,
    height: int,
    width: int,
    batch_size: int,
    batch: int,
    seed: int,
    flip: bool,
    scale: str,
    small: str,
    void: str,
) -> None:
    query = (
        f"height={height}&width={width}&batch_size={batch_size}&seed={seed}&small={small}"
        f"&void={void}&flip={str(flip).lower()}{scale}"
    )
    raw = module_client.get(f"{BATCH}/{batch}?{query}")
    if raw.status_code != 200:  # too few usable samples for this batch: both must agree
        assert module_client.get(f"{BATCH}/{batch}?{query}&encoding=lossless").status_code == (
            raw.status_code
        )
        return
    lossless = module_client.get(f"{BATCH}/{batch}?{query}&encoding=lossless")
    assert lossless.status_code == 200
    expected, raw_meta = arrays(raw.content)
    got, meta = arrays(lossless.content)
    assert sorted(got) == sorted(expected) == ["image", "index", "label", "rect"]
    for name in expected:
        assert got[name].dtype == expected[name].dtype
        assert got[name].shape == expected[name].shape
        assert got[name].tobytes() == expected[name].tobytes()
    assert meta["encoding"] == "lossless"
    assert {k: v for k, v in meta.items() if "." not in k and k != "encoding"} == raw_meta


@pytest.mark.parametrize("quality", ["", "&quality=95", "&quality=50", "&quality=100"])
def test_jpeg_keeps_label_index_rect(client: TestClient, quality: str) -> None:
    query = f"{SIZE}&batch_size=4&seed=3&flip=true&scale=0.5,2"
    expected, _ = arrays(client.get(f"{BATCH}/1?{query}").content)
    response = client.get(f"{BATCH}/1?{query}&encoding=jpeg{quality}")
    assert response.status_code == 200
    got, meta = arrays(response.content)
    for name in ("label", "index", "rect"):
        assert got[name].tobytes() == expected[name].tobytes()
    assert got["image"].shape == expected["image"].shape
    assert meta["quality"] == (quality.removeprefix("&quality=") or "95")
    difference = np.abs(got["image"].astype(np.int16) - expected["image"]).mean()
    assert difference < 12


@pytest.mark.parametrize("encoding", ["lossless", "jpeg"])
def test_encoded_bodies_open_with_safetensors_and_are_smaller(
    client: TestClient, encoding: str
) -> None:
    query = f"{SIZE}&batch_size=4&seed=1"
    raw = client.get(f"{BATCH}/0?{query}").content
    encoded = client.get(f"{BATCH}/0?{query}&encoding={encoding}").content
    opened = safetensors.numpy.load(encoded)
    assert {"index", "rect", "label.zstd", "label.zstd.offsets"} <= set(opened)
    assert len(encoded) < len(raw)


def test_etags_name_the_encoding(client: TestClient) -> None:
    url = f"{BATCH}/0?{SIZE}&batch_size=3"
    tags = {
        client.get(url + extra).headers["etag"]
        for extra in ("", "&encoding=lossless", "&encoding=jpeg", "&encoding=jpeg&quality=80")
    }
    assert len(tags) == 4
    jpeg = client.get(url + "&encoding=jpeg")
    again = client.get(url + "&encoding=jpeg", headers={"If-None-Match": jpeg.headers["etag"]})
    assert again.status_code == 304
    assert client.get(url + "&encoding=jpeg&quality=95").headers["etag"] == jpeg.headers["etag"]


@pytest.mark.parametrize("encoding", ["lossless", "jpeg&quality=70"])
def test_epoch_stream_frames_equal_encoded_batches(client: TestClient, encoding: str) -> None:
    query = f"{SIZE}&batch_size=3&seed=4&encoding={encoding}"
    reader = wire.FrameReader()
    frames = reader.feed(client.get(f"/v1/splits/train/epochs/2?{query}").content)
    reader.close()
    assert len(frames) > 1
    for number, frame in enumerate(frames):
        batch = client.get(f"{BATCH}/{number}?{query}&epoch=2")
        assert bytes(frame) == batch.content
        decoded, _ = arrays(bytes(frame))
        assert decoded["image"].shape == (3, *CROP, 3)


@pytest.mark.parametrize("encoding", ["lossless", "jpeg"])
def test_crop_encoded(client: TestClient, encoding: str) -> None:
    url = f"/v1/splits/train/crop?{SIZE}&seed=9&index=2"
    expected, _ = arrays(client.get(url).content)
    response = client.get(f"{url}&encoding={encoding}")
    assert response.status_code == 200
    assert response.headers["etag"] != client.get(url).headers["etag"]
    got, meta = arrays(response.content)
    assert meta["encoding"] == encoding
    names = ("image", "label", "index", "rect") if encoding == "lossless" else ("label", "rect")
    for name in names:
        assert got[name].tobytes() == expected[name].tobytes()


def test_openapi_declares_the_ranges(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    for path in (
        "/v1/splits/{split}/batches/{batch}",
        "/v1/splits/{split}/epochs/{epoch}",
        "/v1/splits/{split}/crop",
    ):
        params = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
        quality = params["quality"]["schema"]["anyOf"][0]
        assert (quality["minimum"], quality["maximum"]) == (1, 100)
        assert params["encoding"]["schema"]["enum"] == ["raw", "lossless", "jpeg"]
        assert params["encoding"]["schema"]["default"] == "raw"


_SERVE_ONE = """
import sys
from fastapi.testclient import TestClient
from app.main import create_app_with_config
from service.config import Settings
app = create_app_with_config(Settings(data_root=sys.argv[1], cache_dir=sys.argv[2]))
with TestClient(app) as client:
    assert app.state.services.loader.wait(60)
    sys.stdout.buffer.write(client.get(sys.argv[3]).content)
"""


@pytest.mark.slow
def test_encoded_bodies_are_identical_across_processes(voc_root: Path, cache_dir: Path) -> None:
    url = f"{BATCH}/1?{SIZE}&batch_size=4&seed=7&flip=true"
    bodies = set()
    for extra in ("&encoding=jpeg", "&encoding=jpeg", "&encoding=lossless", "&encoding=lossless"):
        done = subprocess.run(
            [sys.executable, "-c", _SERVE_ONE, str(voc_root), str(cache_dir), url + extra],
            capture_output=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "random"},
            timeout=120,
        )
        bodies.add(done.stdout)
    assert len(bodies) == 2  # one per encoding, whatever the process
    for content in bodies:
        assert wire.decode(content)[1]["encoding"] in ("jpeg", "lossless")


def test_a_fresh_app_gives_the_same_encoded_bytes(client: TestClient, make_app: MakeApp) -> None:
    url = f"{BATCH}/0?{SIZE}&batch_size=3&seed=2&encoding=jpeg&quality=90"
    first = client.get(url)
    other = make_app()
    with TestClient(other) as other_client:
        wait_ready(other)
        assert other_client.get(url).content == first.content
