"""Bad requests: each gets its 4xx problem, whose detail names what was wrong."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.app.conftest import CROP, MakeApp, TestClient, wait_ready

OK = f"height={CROP[0]}&width={CROP[1]}"
BATCH = "/v1/splits/train/batches/0"
CROPS = "/v1/splits/train/crop"
EPOCH = "/v1/splits/train/epochs/0"
LABEL = "/v1/splits/train/samples/0/label"

CATALOGUE = [
    # zero, negative, huge
    (f"{BATCH}?height=0&width=48", 422, "height: must be an integer between 1 and 4096, got '0'"),
    (f"{BATCH}?height=32&width=-1", 422, "width: must be an integer between 1 and 4096"),
    (
        f"{BATCH}?{OK}&batch_size=0",
        422,
        "batch_size: must be an integer between 1 and 256, got '0'",
    ),
    (f"{BATCH}?{OK}&batch_size=257", 422, "batch_size: must be an integer between 1 and 256"),
    (f"{BATCH}?{OK}&batch_size=-3", 422, "batch_size"),
    (f"{BATCH}?height=99999999999999999999&width=48", 422, "height"),
    (f"{BATCH}?{OK}&seed=-1", 422, "seed: must be an integer between 0 and"),
    (f"{BATCH}?{OK}&seed=9223372036854775808", 422, "seed"),
    (f"{BATCH}?{OK}&epoch=-1", 422, "epoch: must be an integer between 0 and"),
    (f"{CROPS}?{OK}&seed=-5", 422, "seed"),
    (f"{CROPS}?{OK}&index=-1", 422, "index: must be an integer >= 0"),
    (f"{EPOCH}?{OK}&step=0", 422, "step: must be an integer >= 1"),
    (f"{EPOCH}?{OK}&start=-1", 422, "start"),
    (f"{EPOCH}?{OK}&stop=-2", 422, "stop"),
    ("/v1/splits/train/epochs/-1?height=32&width=48", 422, "epoch"),
    ("/v1/splits/train/samples/-1", 422, "index: must be an integer >= 0"),
    (f"/v1/splits/train?height=0&width={CROP[1]}", 422, "height"),
    # a crop size no sample has, and deployment limits
    (f"{BATCH}?height=4000&width=4000&batch_size=1", 422, "height: no sample of split 'train'"),
    (f"{CROPS}?height=32&width=4000", 422, "width: no sample of split 'train'"),
    (f"{BATCH}?height=4096&width=4096&small=pad&batch_size=256", 422, "batch_size"),
    (f"{CROPS}?height=2000&width=2000&small=pad&format=json", 422, "format: json is limited"),
    (f"{CROPS}?{OK}&index=13&height=95&width=111", 422, "index: sample 13 is"),
    # non-numeric and malformed
    (
        f"{BATCH}?height=abc&width=48",
        422,
        "height: must be an integer between 1 and 4096, got 'abc'",
    ),
    (f"{BATCH}?height=1.5&width=48", 422, "height"),
    (f"{BATCH}?{OK}&batch_size=", 422, "batch_size"),
    (f"{BATCH}?{OK}&seed=0x10", 422, "seed"),
    (f"{BATCH}?{OK}&shuffle=maybe", 422, "shuffle: must be true or false"),
    (f"{BATCH}?{OK}&drop_last=2", 422, "drop_last"),
    (f"{BATCH}?{OK}&flip=yes-please", 422, "flip"),
    (f"{BATCH}?{OK}&scale=2,1", 422, "scale: must be two numbers"),
    (f"{BATCH}?{OK}&scale=0,1", 422, "scale"),
    (f"{BATCH}?{OK}&scale=abc", 422, "scale"),
    (f"{BATCH}?{OK}&scale=1,2,3", 422, "scale"),
    (f"{BATCH}?{OK}&scale=nan,1", 422, "scale"),
    (f"{BATCH}?{OK}&scale=0.5,100", 422, "scale"),
    ("/v1/splits/train/batches/zero?height=32&width=48", 422, "batch"),
    ("/v1/splits/train/samples/first", 422, "index"),
    # missing required parameters
    (f"{BATCH}?width=48", 422, "height: required, must be an integer between 1 and 4096"),
    (f"{CROPS}?height=32", 422, "width: required"),
    (EPOCH, 422, "height: required"),
    # unknown names
    (f"{BATCH}?{OK}&dtype=float64", 422, "dtype: must be one of uint8, float32, got 'float64'"),
    (f"{BATCH}?{OK}&layout=hwc", 422, "layout: must be one of nhwc, nchw"),
    (f"{BATCH}?{OK}&small=crop", 422, "small: must be one of drop, pad"),
    (f"{BATCH}?{OK}&void=zero", 422, "void: must be one of ignore, background"),
    (f"{BATCH}?{OK}&format=npy", 422, "format: must be safetensors, got 'npy'"),
    (f"{LABEL}?format=gif", 422, "format: must be one of npy, json, png, safetensors"),
    (f"{CROPS}?{OK}&format=npy", 422, "format: must be one of safetensors, json, png"),
    ("/v1/splits/train/samples/0/image?format=bmp", 422, "format: must be one of jpeg, npy, png"),
    ("/v1/colormap?format=svg", 422, "format: must be one of json, png"),
    ("/v1/splits/train/stats?format=svg", 422, "format: must be one of json, png"),
    # the training-recipe parameters
    (f"{BATCH}?{OK}&cat_max_ratio=0", 422, "cat_max_ratio: must be a number > 0 and <= 1"),
    (f"{BATCH}?{OK}&cat_max_ratio=1.5", 422, "cat_max_ratio: must be a number > 0 and <= 1"),
    (f"{BATCH}?{OK}&cat_max_ratio=-0.2", 422, "cat_max_ratio: must be a number > 0"),
    (f"{BATCH}?{OK}&cat_max_ratio=nan", 422, "cat_max_ratio"),
    (f"{BATCH}?{OK}&cat_max_ratio=most", 422, "cat_max_ratio: must be a number > 0"),
    (f"{CROPS}?{OK}&cat_max_ratio=2", 422, "cat_max_ratio: must be a number > 0 and <= 1"),
    (f"{BATCH}?{OK}&photometric=sometimes", 422, "photometric: must be true or false"),
    (f"{BATCH}?{OK}&crop_mode=middle", 422, "crop_mode: must be one of random, center, full"),
    (f"/v1/splits/train?{OK}&crop_mode=whole", 422, "crop_mode: must be one of random"),
    (
        f"{BATCH}?{OK}&crop_mode=center&cat_max_ratio=0.75",
        422,
        "cat_max_ratio: redraws random windows only",
    ),
    (f"{BATCH}?{OK}&crop_mode=full&scale=0.5,2", 422, "scale: must be none with crop_mode=full"),
    (
        f"{BATCH}?height=20&width=20&crop_mode=full",
        422,
        "height: crop_mode=full: no sample of split 'train' fits a canvas of 20 x 20",
    ),
    (f"{EPOCH}?height=95&width=20&crop_mode=full", 422, "width: crop_mode=full: no sample"),
    (f"{CROPS}?height=30&width=40&crop_mode=full&index=13", 422, "larger than the canvas"),
    ("/v1/splits/tain/stats", 404, "unknown split 'tain'"),
    ("/v1/splits/train/samples?classes=21", 422, "classes: must be class indices 0..20"),
    ("/v1/splits/train/samples?classes=person", 422, "classes: must be comma-separated"),
    ("/v1/splits/train/samples?limit=0", 422, "limit: must be an integer between 1 and 1000"),
    ("/v1/splits/train/samples?offset=-1", 422, "offset: must be an integer >= 0"),
    ("/v1/splits/tain", 404, "unknown split 'tain'; available: train, val"),
    (f"/v1/splits/TRAIN/batches/0?{OK}", 404, "unknown split 'TRAIN'"),
    (f"{BATCH}?{OK}&batchsize=32", 422, "batchsize: unknown parameter; this endpoint takes:"),
    (f"{LABEL}?fromat=png", 422, "fromat: unknown parameter"),
    # out of range
    ("/v1/splits/train/samples/14", 404, "sample index 14 is out of range"),
    ("/v1/splits/val/samples/99999999999", 404, "out of range"),
    ("/v1/splits/train/samples/14/label", 404, "sample index 14"),
    ("/v1/splits/train/samples/14/image?format=npy", 404, "sample index 14"),
    (f"{CROPS}?{OK}&index=14", 404, "sample index 14"),
    (f"/v1/splits/train/batches/1000?{OK}", 404, "batch 1000 out of range"),
    (f"/v1/splits/val/batches/0?{OK}&batch_size=200", 404, "this epoch has no batches"),
    # transport encodings: ranges, then combinations that are not served
    (f"{BATCH}?{OK}&encoding=png", 422, "encoding: must be one of raw, lossless, jpeg"),
    (f"{EPOCH}?{OK}&encoding=zstd", 422, "encoding: must be one of raw, lossless, jpeg"),
    (f"{CROPS}?{OK}&encoding=JPEG", 422, "encoding: must be one of raw, lossless, jpeg"),
    (
        f"{BATCH}?{OK}&encoding=jpeg&quality=0",
        422,
        "quality: must be an integer between 1 and 100, got '0'",
    ),
    (f"{BATCH}?{OK}&encoding=jpeg&quality=101", 422, "quality: must be an integer between 1"),
    (f"{BATCH}?{OK}&encoding=jpeg&quality=90.5", 422, "quality: must be an integer between 1"),
    (f"{EPOCH}?{OK}&encoding=jpeg&quality=high", 422, "quality: must be an integer between 1"),
    (f"{CROPS}?{OK}&encoding=jpeg&quality=-1", 422, "quality: must be an integer between 1"),
    (f"{BATCH}?{OK}&quality=90", 422, "quality: applies only to encoding=jpeg (got encoding=raw)"),
    (
        f"{EPOCH}?{OK}&encoding=lossless&quality=90",
        422,
        "quality: applies only to encoding=jpeg (got encoding=lossless)",
    ),
    (f"{CROPS}?{OK}&quality=90", 422, "quality: applies only to encoding=jpeg"),
    (
        f"{BATCH}?{OK}&encoding=jpeg&dtype=float32",
        422,
        "dtype: encoding=jpeg carries uint8 images only (got dtype=float32)",
    ),
    (f"{EPOCH}?{OK}&encoding=lossless&dtype=float32", 422, "dtype: encoding=lossless carries"),
    (f"{CROPS}?{OK}&encoding=jpeg&dtype=float32", 422, "dtype: encoding=jpeg carries uint8"),
    (
        f"{BATCH}?{OK}&encoding=lossless&layout=nchw",
        422,
        "layout: encoding=lossless carries nhwc images only (got layout=nchw)",
    ),
    (
        f"{CROPS}?{OK}&encoding=jpeg&format=png",
        422,
        "format: encoding=jpeg applies to format=safetensors only (got format=png)",
    ),
    (f"{CROPS}?{OK}&encoding=lossless&format=json", 422, "format: encoding=lossless applies"),
    # path tricks
    ("/v1/splits/%2e%2e/samples/0", 404, "unknown split '..'"),
    ("/v1/splits/..%2F..%2Fetc/samples/0", 404, ""),
    ("/v1/splits/%2e%2e%2f%2e%2e/samples/0/image", 404, ""),
    ("/v1/splits/train%00/samples/0", 404, "unknown split"),
    ("/v1/splits/train/samples/0/../../val", 404, ""),
    ("/v1/nothing-here", 404, "no endpoint at /v1/nothing-here"),
    ("/v2/dataset", 404, "no endpoint"),
]


@pytest.mark.parametrize(("url", "status", "detail"), CATALOGUE)
def test_bad_request(client: TestClient, url: str, status: int, detail: str) -> None:
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= set(problem)
    assert detail in problem["detail"]


def test_the_catalogue_is_large() -> None:
    assert len(CATALOGUE) >= 40


def test_post_is_405_problem(client: TestClient) -> None:
    response = client.post("/v1/dataset")
    assert response.status_code == 405
    assert response.json()["status"] == 405


TOKEN = "s3cret-token"


@pytest.fixture
def guarded(make_app: MakeApp) -> Iterator[TestClient]:
    """A client of an app that requires the bearer token."""
    app = make_app(api_token=TOKEN)
    with TestClient(app) as test_client:
        wait_ready(app)
        yield test_client


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing bearer token"),
        ({"Authorization": "Bearer wrong"}, "wrong bearer token"),
        ({"Authorization": f"Bearer {TOKEN}x"}, "wrong bearer token"),
        ({"Authorization": f"Basic {TOKEN}"}, "missing bearer token"),
        ({"Authorization": TOKEN}, "missing bearer token"),
        ({"Authorization": "Bearer "}, "missing bearer token"),
    ],
)
@pytest.mark.parametrize("url", ["/v1/dataset", "/v1/classes", f"{BATCH}?height=0"])
def test_wrong_token_is_401(
    guarded: TestClient, headers: dict[str, str], detail: str, url: str
) -> None:
    response = guarded.get(url, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert detail in response.json()["detail"]


@pytest.mark.parametrize("url", ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"])
def test_open_endpoints_need_no_token(guarded: TestClient, url: str) -> None:
    assert guarded.get(url).status_code == 200


def test_right_token_is_accepted(guarded: TestClient) -> None:
    response = guarded.get("/v1/dataset", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200


def test_not_ready_is_503_with_retry_after(make_app: MakeApp) -> None:
    app = make_app()  # lifespan not started: the dataset never loads
    response = TestClient(app).get("/v1/splits/train")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "still loading" in response.json()["detail"]
    assert TestClient(app).get("/healthz").status_code == 200


def test_failed_load_says_why(make_app: MakeApp, tmp_path_factory: pytest.TempPathFactory) -> None:
    app = make_app(data_root=tmp_path_factory.mktemp("empty"))
    with TestClient(app) as test_client:
        wait_ready(app)
        response = test_client.get("/readyz")
    assert response.status_code == 503
    assert "loading the dataset failed" in response.json()["detail"]


def test_overload_is_503_with_retry_after(make_app: MakeApp) -> None:
    app = make_app(max_concurrency=1, queue_limit=0)
    slots = app.state.services.slots
    with TestClient(app) as test_client:
        wait_ready(app)
        portal = test_client.portal
        assert portal is not None
        portal.call(slots.acquire)  # one heavy request in flight, none may wait
        busy = test_client.get(f"{BATCH}?{OK}&batch_size=4")
        light = test_client.get("/v1/splits/train")
        portal.call(slots.release)
        again = test_client.get(f"{BATCH}?{OK}&batch_size=4")
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert busy.headers["content-type"] == "application/problem+json"
    assert "1 heavy requests are running and 0 waiting" in busy.json()["detail"]
    assert light.status_code == 200
    assert again.status_code == 200


def test_draining_server_refuses_heavy_work_and_is_not_ready(make_app: MakeApp) -> None:
    app = make_app()
    with TestClient(app) as test_client:
        wait_ready(app)
        assert test_client.get("/readyz").status_code == 200
        app.state.services.slots.drain()
        ready = test_client.get("/readyz")
        heavy = test_client.get(f"{BATCH}?{OK}&batch_size=4")
        light = test_client.get("/v1/splits/train")
    for response in (ready, heavy):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.headers["connection"] == "close"
        assert response.json()["code"] == "draining"
    assert light.status_code == 200


def test_unexpected_error_is_500_without_internals(make_app: MakeApp) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal state /etc/passwd")

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize("limit", [8, 300])  # below and above the default (drop_last=false:
# the test split has fewer samples)
def test_the_batch_size_limit_is_the_setting(make_app: MakeApp, limit: int) -> None:
    app = make_app(max_batch_size=limit, max_crop_pixels=64 * 64)
    with TestClient(app) as test_client:
        wait_ready(app)
        query = f"{BATCH}?height=4&width=4&small=pad&drop_last=false&batch_size="
        largest = test_client.get(f"{query}{limit}")
        beyond = test_client.get(f"{query}{limit + 1}")
        schema = test_client.get("/openapi.json").json()
    assert largest.status_code == 200, largest.text
    assert beyond.status_code == 422
    assert beyond.json()["detail"] == (
        f"batch_size: must be an integer between 1 and {limit}, got {limit + 1}"
    )
    parameters = schema["paths"]["/v1/splits/{split}/batches/{batch}"]["get"]["parameters"]
    (batch_size,) = [p for p in parameters if p["name"] == "batch_size"]
    assert batch_size["schema"]["maximum"] == limit
