"""Every endpoint and every format, through HTTP, on the tiny test dataset."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image
from segserve_client.protocol.wire import decode

from service.labels import colorize, decode_label
from service.voc import IGNORE_COLOR, VOC_CLASSES, VOC_COLORMAP
from tests.app.conftest import BROKEN, CROP, TestClient
from tests.factories import classes_from_image, interior

BATCH = f"height={CROP[0]}&width={CROP[1]}&batch_size=4"


def _npy(body: bytes) -> npt.NDArray[Any]:
    array: npt.NDArray[Any] = np.load(io.BytesIO(body), allow_pickle=False)
    return array


def _png(body: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(body))
    picture.load()
    return picture


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_every_response_names_its_worker(client: TestClient) -> None:
    answers = [client.get(path) for path in ("/healthz", "/v1/classes", "/v1/splits/nope")]
    assert answers[2].status_code == 404
    workers = {answer.headers["Segserve-Worker"] for answer in answers}
    assert len(workers) == 1  # one process: one id, eight hex digits
    assert int(workers.pop(), 16) >= 0
    assert {answer.headers["Segserve-Workers"] for answer in answers} == {"1"}


def test_dataset_lists_splits_and_the_excluded_file(client: TestClient, voc_root: Path) -> None:
    body = client.get("/v1/dataset").json()
    assert body["num_classes"] == 21
    assert body["ignore_index"] == 255
    assert body["mean"] == [0.485, 0.456, 0.406]
    assert body["std"] == [0.229, 0.224, 0.225]
    assert body["splits"] == [{"name": "train", "size": 14}, {"name": "val", "size": 6}]
    assert body["excluded_count"] == 1
    assert [item["name"] for item in body["excluded"]] == [BROKEN]
    assert body["name"] == voc_root.name


def test_classes(client: TestClient) -> None:
    body = client.get("/v1/classes").json()
    assert [c["index"] for c in body] == list(range(21))
    assert [c["name"] for c in body] == list(VOC_CLASSES)
    assert [tuple(c["color"]) for c in body] == list(VOC_COLORMAP)


def test_colormap_json_and_legend(client: TestClient) -> None:
    body = client.get("/v1/colormap").json()
    assert body == {
        "colors": [list(c) for c in VOC_COLORMAP],
        "ignore_index": 255,
        "ignore_color": list(IGNORE_COLOR),
    }
    response = client.get("/v1/colormap", params={"format": "png"})
    assert response.headers["content-type"] == "image/png"
    legend = np.asarray(_png(response.content).convert("RGB"))
    found = {tuple(int(v) for v in pixel) for pixel in legend.reshape(-1, 3)}
    assert set(VOC_COLORMAP) | {IGNORE_COLOR} <= found


@pytest.mark.parametrize(
    ("query", "usable", "batches"),
    [
        ("", 14, 3),  # no crop: every sample; 14 // 4
        (f"&height={CROP[0]}&width={CROP[1]}", None, None),
        (f"&height={CROP[0]}&width={CROP[1]}&small=pad", 14, 3),
        ("&height=4000&width=4000", 0, 0),
        ("&drop_last=false", 14, 4),
    ],
)
def test_split_info(
    client: TestClient, query: str, usable: int | None, batches: int | None
) -> None:
    body = client.get(f"/v1/splits/train?batch_size=4{query}").json()
    heights = np.array(
        [client.get(f"/v1/splits/train/samples/{i}").json()["height"] for i in range(14)]
    )
    widths = np.array(
        [client.get(f"/v1/splits/train/samples/{i}").json()["width"] for i in range(14)]
    )
    fits = int(((heights >= CROP[0]) & (widths >= CROP[1])).sum())
    assert 0 < fits < 14, "the test dataset must have samples on both sides of the crop"
    assert body["name"] == "train"
    assert body["size"] == 14
    assert body["usable"] == (fits if usable is None else usable)
    assert body["batches"] == (fits // 4 if batches is None else batches)


def test_sample_info_matches_the_files(client: TestClient, voc_root: Path) -> None:
    body = client.get("/v1/splits/val/samples/2").json()
    names = (voc_root / "ImageSets/Segmentation/val.txt").read_text().split()
    with Image.open(voc_root / "JPEGImages" / f"{names[2]}.jpg") as picture:
        width, height = picture.size
    assert body == {"index": 2, "id": names[2], "height": height, "width": width}


def test_image_formats(client: TestClient, voc_root: Path) -> None:
    sample = client.get("/v1/splits/train/samples/1").json()
    jpeg = client.get("/v1/splits/train/samples/1/image")
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert jpeg.content == (voc_root / "JPEGImages" / f"{sample['id']}.jpg").read_bytes()
    pixels = _npy(client.get("/v1/splits/train/samples/1/image?format=npy").content)
    assert pixels.dtype == np.uint8
    assert pixels.shape == (sample["height"], sample["width"], 3)
    assert np.array_equal(pixels, np.asarray(_png(jpeg.content).convert("RGB")))
    png = _png(client.get("/v1/splits/train/samples/1/image?format=png").content)
    assert np.array_equal(np.asarray(png), pixels)


@pytest.mark.parametrize("void", ["ignore", "background"])
def test_label_formats_agree(client: TestClient, void: str) -> None:
    url = f"/v1/splits/train/samples/3/label?void={void}"
    npy = client.get(url)
    assert npy.headers["content-type"] == "application/x-npy"
    label = _npy(npy.content)
    assert label.dtype == np.uint8
    assert label.ndim == 2
    assert (255 in label) == (void == "ignore")
    as_json = client.get(url + "&format=json").json()
    assert (as_json["height"], as_json["width"]) == label.shape
    assert np.array_equal(np.array(as_json["data"], dtype=np.uint8), label)
    png = _png(client.get(url + "&format=png").content)
    assert png.mode == "P"
    assert np.array_equal(decode_label(png), label)
    tensors, metadata = decode(client.get(url + "&format=safetensors").content)
    assert np.array_equal(tensors["label"], label)
    assert metadata["split"] == "train"
    assert metadata["void"] == void


def test_crop_formats(client: TestClient) -> None:
    url = f"/v1/splits/train/crop?height={CROP[0]}&width={CROP[1]}&seed=5"
    response = client.get(url)
    assert response.headers["content-type"] == "application/vnd.safetensors"
    assert response.headers["x-seed"] == "5"
    tensors, metadata = decode(response.content)
    assert tensors["image"].shape == (1, *CROP, 3)
    assert tensors["image"].dtype == np.uint8
    assert tensors["label"].shape == (1, *CROP)
    assert tensors["index"].dtype == np.int64
    assert tensors["rect"].dtype == np.int32
    assert {"split", "seed", "epoch", "batch"} <= set(metadata)
    body = client.get(url + "&format=json").json()
    assert body["index"] == int(tensors["index"][0])
    assert np.array_equal(np.array(body["image"], dtype=np.uint8), tensors["image"][0])
    assert np.array_equal(np.array(body["label"], dtype=np.uint8), tensors["label"][0])
    picture = np.asarray(_png(client.get(url + "&format=png").content).convert("RGB"))
    assert picture.shape == (CROP[0], 2 * CROP[1] + 4, 3)
    assert np.array_equal(picture[:, : CROP[1]], tensors["image"][0])
    assert np.array_equal(picture[:, -CROP[1] :], colorize(tensors["label"][0]))


def test_crop_image_and_label_are_aligned(client: TestClient) -> None:
    for seed in range(4):
        url = f"/v1/splits/train/crop?height={CROP[0]}&width={CROP[1]}&seed={seed}&flip=true"
        tensors, _ = decode(client.get(url).content)
        image, label = tensors["image"][0], tensors["label"][0]
        inside = interior(label)
        assert np.array_equal(classes_from_image(image)[inside], label[inside])


def test_crop_without_seed_is_random_and_not_cached(client: TestClient) -> None:
    url = f"/v1/splits/train/crop?height={CROP[0]}&width={CROP[1]}"
    first, second = client.get(url), client.get(url)
    assert first.headers["x-seed"] != second.headers["x-seed"]
    assert "etag" not in first.headers
    assert "immutable" not in first.headers["cache-control"]
    replay = client.get(url + f"&seed={first.headers['x-seed']}")
    assert replay.content == first.content


def test_batch_tensors(client: TestClient) -> None:
    response = client.get(f"/v1/splits/train/batches/1?{BATCH}&dtype=float32&seed=3&epoch=2")
    assert response.headers["content-type"] == "application/vnd.safetensors"
    assert int(response.headers["content-length"]) == len(response.content)
    tensors, metadata = decode(response.content)
    assert tensors["image"].shape == (4, 3, *CROP)
    assert tensors["image"].dtype == np.float32
    assert tensors["label"].shape == (4, *CROP)
    assert tensors["index"].shape == (4,)
    assert tensors["rect"].shape == (4, 4)
    assert (metadata["split"], metadata["seed"], metadata["epoch"], metadata["batch"]) == (
        "train",
        "3",
        "2",
        "1",
    )
    assert float(tensors["image"].min()) < 0 < float(tensors["image"].max())


def test_epoch_stream_frames(client: TestClient) -> None:
    response = client.get(f"/v1/splits/train/epochs/0?{BATCH}&small=pad&start=1&step=2")
    body, frames = response.content, []
    while body:
        length = int.from_bytes(body[:8], "little")
        frames.append(decode(body[8 : 8 + length]))
        body = body[8 + length :]
    assert [metadata["batch"] for _, metadata in frames] == ["1"]  # 14 // 4 = 3 batches: 0, 1, 2
    assert response.headers["x-batch-count"] == "1"


@pytest.mark.parametrize(
    ("query", "announced"),
    [
        ("", True),
        ("&dtype=float32", True),
        ("&dtype=float32&layout=nhwc", True),
        ("&drop_last=false", True),
        ("&encoding=lossless", False),
        ("&encoding=jpeg", False),
    ],
)
def test_a_raw_stream_announces_its_length_an_encoded_one_is_chunked(
    client: TestClient, query: str, announced: bool
) -> None:
    response = client.get(f"/v1/splits/train/epochs/1?{BATCH}&small=pad{query}")
    assert response.status_code == 200
    length = response.headers.get("content-length")
    assert len(response.content) > 0
    assert length == (str(len(response.content)) if announced else None)


def test_etag_and_not_modified(client: TestClient) -> None:
    url = "/v1/splits/val/samples/0/label?format=png"
    first = client.get(url)
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    other = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_metrics_count_requests_samples_and_bytes(client: TestClient) -> None:
    client.get(f"/v1/splits/train/batches/0?{BATCH}")
    text = client.get("/metrics").text
    route = 'route="/v1/splits/{split}/batches/{batch}"'
    assert f'segserve_http_requests_total{{method="GET",{route},status="200"}} 1.0' in text
    assert 'segserve_samples_served_total{split="train"} 4.0' in text
    assert f"segserve_http_response_bytes_total{{{route}}}" in text
    assert "segserve_http_request_duration_seconds_bucket" in text


def test_openapi_documents_pictures_and_problems(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    label = paths["/v1/splits/{split}/samples/{index}/label"]["get"]["responses"]
    assert "image/png" in label["200"]["content"]
    assert "application/problem+json" in label["422"]["content"]
    assert "image/png" in paths["/v1/colormap"]["get"]["responses"]["200"]["content"]
    assert "image/png" in paths["/v1/splits/{split}/crop"]["get"]["responses"]["200"]["content"]
    assert json.dumps(paths).count("maximum") > 5
    assert client.get("/docs").status_code == 200


def test_swagger_ui_is_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    scripts = re.findall(r'src="([^"]+\.js)"', page)
    styles = re.findall(r'href="([^"]+\.css)"', page)
    assert scripts
    assert styles
    for url in scripts + styles:
        assert url.startswith("/"), f"{url} is not served by the app itself"
        asset = client.get(url)
        assert asset.status_code == 200
        assert len(asset.content) > 10_000


def _plain_split_counts(client: TestClient, split: str) -> tuple[list[int], list[int], int, int]:
    """Per class pixels and images, ignore and all pixels, from the labels the API serves."""
    size = client.get(f"/v1/splits/{split}").json()["size"]
    pixels, images, ignore, total = [0] * 21, [0] * 21, 0, 0
    for index in range(size):
        label = _npy(client.get(f"/v1/splits/{split}/samples/{index}/label").content)
        total += label.size
        ignore += int((label == 255).sum())
        for c in range(21):
            pixels[c] += int((label == c).sum())
            images[c] += int((label == c).any())
    return pixels, images, ignore, total


@pytest.mark.parametrize("split", ["train", "val"])
def test_stats_equal_a_count_over_the_served_labels(client: TestClient, split: str) -> None:
    body = client.get(f"/v1/splits/{split}/stats").json()
    pixels, images, ignore, total = _plain_split_counts(client, split)
    assert body["split"] == split
    assert body["images"] == client.get(f"/v1/splits/{split}").json()["size"]
    assert (body["pixels"], body["ignore_pixels"]) == (total, ignore)
    assert [c["pixels"] for c in body["classes"]] == pixels
    assert [c["images"] for c in body["classes"]] == images
    assert [c["name"] for c in body["classes"]] == list(VOC_CLASSES)
    weights = [c["weight"] for c in body["classes"]]
    assert [w is None for w in weights] == [n == 0 for n in images]


def test_stats_picture_is_a_png_declared_in_the_schema(client: TestClient) -> None:
    response = client.get("/v1/splits/train/stats?format=png")
    assert response.headers["content-type"] == "image/png"
    picture = _png(response.content)
    assert picture.width > 300
    assert picture.height > 21 * 20
    again = client.get(
        "/v1/splits/train/stats?format=png", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    operation = client.get("/openapi.json").json()["paths"]["/v1/splits/{split}/stats"]["get"]
    assert "image/png" in operation["responses"]["200"]["content"]


def test_samples_filtered_by_class(client: TestClient) -> None:
    everything = client.get("/v1/splits/train/samples?limit=1000").json()
    assert everything["total"] == len(everything["samples"]) == 14
    first = everything["samples"][0]
    label = _npy(client.get("/v1/splits/train/samples/0/label").content)
    present = sorted(int(c) for c in np.unique(label) if c < 21)
    assert [c["index"] for c in first["classes"]] == present
    assert [c["pixels"] for c in first["classes"]] == [int((label == c).sum()) for c in present]
    assert first["ignore_pixels"] == int((label == 255).sum())
    wanted = present[-1]
    body = client.get(f"/v1/splits/train/samples?classes={wanted}&limit=2").json()
    assert body["classes"] == [wanted]
    assert len(body["samples"]) <= 2
    holders = [
        s["index"] for s in everything["samples"] if wanted in [c["index"] for c in s["classes"]]
    ]
    assert body["total"] == len(holders)
    assert [s["index"] for s in body["samples"]] == holders[:2]


def test_usable_follows_crop_mode(client: TestClient) -> None:
    infos = [client.get(f"/v1/splits/train/samples/{i}").json() for i in range(14)]
    shapes = [(info["height"], info["width"]) for info in infos]
    canvas = "height=60&width=80"
    full = client.get(f"/v1/splits/train?{canvas}&crop_mode=full&batch_size=2").json()
    assert full["usable"] == sum(h <= 60 and w <= 80 for h, w in shapes)
    assert full["batches"] == full["usable"] // 2
    center = client.get(f"/v1/splits/train?{canvas}&crop_mode=center").json()
    assert center["usable"] == sum(h >= 60 and w >= 80 for h, w in shapes)
    assert center == client.get(f"/v1/splits/train?{canvas}").json()
    nothing = client.get("/v1/splits/train?height=20&width=20&crop_mode=full").json()
    assert nothing["usable"] == 0


def test_recipe_batches_are_deterministic_and_keep_label_and_rect(client: TestClient) -> None:
    recipe = f"{BATCH}&seed=4&small=pad&scale=0.5,2.0&flip=true&cat_max_ratio=0.75"
    first = client.get(f"/v1/splits/train/batches/1?{recipe}&photometric=true")
    again = client.get(f"/v1/splits/train/batches/1?{recipe}&photometric=true")
    assert first.status_code == 200
    assert first.content == again.content
    plain = decode(client.get(f"/v1/splits/train/batches/1?{recipe}").content)
    distorted = decode(first.content)
    for name in ("label", "index", "rect"):
        assert np.array_equal(plain[0][name], distorted[0][name]), name
    assert distorted[1]["photometric"] == "true"
    assert distorted[1]["cat_max_ratio"] == "0.75"


def test_full_canvas_batches_hold_whole_images(client: TestClient) -> None:
    query = "height=96&width=112&crop_mode=full&shuffle=false&drop_last=false&batch_size=5"
    seen = []
    for batch in range(3):
        tensors, metadata = decode(client.get(f"/v1/splits/train/batches/{batch}?{query}").content)
        assert metadata["crop_mode"] == "full"
        for k, index in enumerate(tensors["index"].tolist()):
            label = _npy(client.get(f"/v1/splits/train/samples/{index}/label").content)
            h, w = label.shape
            assert tensors["rect"][k].tolist() == [0, 0, h, w]
            assert np.array_equal(tensors["label"][k, :h, :w], label)
            assert (tensors["label"][k, h:] == 255).all()
            seen.append(index)
    assert seen == list(range(14))
