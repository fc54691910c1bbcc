"""The browser's pages over HTTP: HTML shells, no outside asset, what they tell their scripts."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.resources import files

import pytest

from app.browser.pages import STATIC
from tests.app.conftest import MakeApp, TestClient, wait_ready

PAGES = ["/browse", "/browse/train", "/browse/train/3", "/browse/val/0"]
ASSETS = ["api.js", "dom.js", "npy.js", "dataset.js", "gallery.js", "sample.js", "browse.css"]


class _Links(HTMLParser):
    """Every src/href of a page and the data- attributes of its body."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.body: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.links += [values[name] for name in ("src", "href") if name in values]
        if tag == "body":
            self.body = {k.removeprefix("data-"): v for k, v in values.items()}


def _parse(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", PAGES)
def test_pages_are_html_with_only_local_links(shared_client: TestClient, path: str) -> None:
    response = shared_client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "img-src 'self' blob:" in csp
    parsed = _parse(response.text)
    assert parsed.links
    for link in parsed.links:
        assert link.startswith("/"), f"{link} is not a link to this server"
        assert not link.startswith("//")


def test_page_data_names_the_page_and_the_sample(shared_client: TestClient) -> None:
    body = _parse(shared_client.get("/browse/train/3").text).body
    assert body["page"] == "sample"
    assert body["split"] == "train"
    assert body["index"] == "3"
    assert body["token"] == "none"
    assert body["stats"] == "yes"  # the server has GET /v1/splits/{split}/stats
    assert body["presence"] == "yes"  # and GET /v1/splits/{split}/samples?classes=
    crop_params = body["crop-params"].split(",")
    assert {"height", "width", "flip", "scale", "seed", "index"} <= set(crop_params)


def test_page_data_says_a_token_is_wanted_but_never_holds_it(make_app: MakeApp) -> None:
    app = make_app(api_token="s3cret-token")
    with TestClient(app) as test_client:
        wait_ready(app)
        for path in PAGES:
            response = test_client.get(path)
            assert response.status_code == 200
            assert "s3cret-token" not in response.text
            assert _parse(response.text).body["token"] == "required"
        assert test_client.get("/v1/dataset").status_code == 401


def test_split_names_are_escaped(shared_client: TestClient) -> None:
    response = shared_client.get('/browse/"><script>x')
    assert response.status_code == 200
    assert "<script>x" not in response.text
    assert _parse(response.text).body["split"] == '"><script>x'


@pytest.mark.parametrize("path", ["/browse/train/-1", "/browse/train/one"])
def test_a_bad_sample_index_is_422(shared_client: TestClient, path: str) -> None:
    response = shared_client.get(path)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "index" in response.json()["detail"]


@pytest.mark.parametrize("asset", ASSETS)
def test_assets_are_served_from_the_package(shared_client: TestClient, asset: str) -> None:
    response = shared_client.get(f"{STATIC}/{asset}")
    assert response.status_code == 200
    expected = "text/css" if asset.endswith(".css") else "javascript"
    assert expected in response.headers["content-type"]
    assert response.headers["etag"]
    again = shared_client.get(
        f"{STATIC}/{asset}", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


def test_no_asset_names_another_origin() -> None:
    """Scripts, styles and templates load nothing from elsewhere (works offline)."""
    outside = re.compile(
        r"""(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|url\(\s*['"]?(https?:|//)"""
    )
    package = files("app.browser")
    checked = 0
    for folder in ("static", "templates"):
        for entry in (package / folder).iterdir():
            # An XML namespace is a name, not something fetched.
            text = re.sub(r'xmlns="[^"]*"', "", entry.read_text("utf-8"))
            assert not outside.search(text), f"{folder}/{entry.name} refers to another origin"
            checked += 1
    assert checked >= len(ASSETS) + 4


def test_pages_stay_out_of_the_openapi_document(shared_client: TestClient) -> None:
    paths = shared_client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith("/browse")]
