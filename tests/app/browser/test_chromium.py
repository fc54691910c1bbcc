"""The browser pages in a real Chromium: pictures load, controls work, nothing leaves the server.

Every test also checks that the page logged no console error and sent no
request to another origin (the pages must work without internet access).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests.app.browser.conftest import DEMO_TRAIN, TOKEN, Watched

if TYPE_CHECKING:
    from playwright.sync_api import Request

PER_PAGE = 24
PAGE_BUDGET = 500_000  # bytes of one gallery page's pictures

pytestmark = pytest.mark.browser


def _clean(web: Watched) -> None:
    assert web.errors == [], f"console errors: {web.errors}"
    assert web.outside_requests() == [], "requests to another origin"


def _wait_gallery(web: Watched, count: int, first: int | None = None) -> None:
    """Wait until the grid holds ``count`` thumbnails (the first of sample ``first``), all drawn.

    The URL changes before the new page replaces the old one, so the wait names
    the page it wants rather than counting pictures that may be the old page's.
    """
    web.page.wait_for_function(
        """([n, first]) => {
          const thumbs = [...document.querySelectorAll('.gallery .thumb')];
          return thumbs.length === n
            && (first === null || Number(thumbs[0].dataset.index) === first)
            && thumbs.every((t) => t.querySelectorAll('img[data-ready]').length === 2);
        }""",
        arg=[count, first],
    )


def _shown_indices(web: Watched) -> list[int]:
    values = web.page.eval_on_selector_all(
        ".gallery .thumb", "links => links.map(a => a.dataset.index)"
    )
    return [int(value) for value in values]


def _body_size(request: Request) -> int:
    response = request.response()
    assert response is not None, f"{request.url} got no response"
    return len(response.body())


def _text(web: Watched, selector: str) -> str:
    return web.page.text_content(selector) or ""


def _picture(png: bytes) -> npt.NDArray[np.int16]:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def test_gallery_shows_its_pictures(web: Watched, screenshots: Path) -> None:
    web.goto("/browse/train")
    _wait_gallery(web, PER_PAGE, 0)
    sizes = web.page.eval_on_selector_all(
        ".gallery img", "imgs => imgs.map(img => [img.naturalWidth, img.naturalHeight])"
    )
    assert len(sizes) == 2 * PER_PAGE
    assert all(0 < width <= 160 and 0 < height <= 160 for width, height in sizes)
    assert _shown_indices(web) == list(range(PER_PAGE))
    web.page.screenshot(path=screenshots / "gallery.png")
    pictures = [r for r in web.requests if re.search(r"/samples/\d+/(image|label)\?", r.url)]
    assert len(pictures) == 2 * PER_PAGE
    weight = sum(_body_size(request) for request in pictures)
    assert weight < PAGE_BUDGET, f"a gallery page costs {weight} bytes"
    assert all("authorization" not in r.headers for r in web.requests)  # no token, none sent
    _clean(web)


def test_gallery_pages_forward_and_back(web: Watched) -> None:
    web.goto("/browse/train")
    _wait_gallery(web, PER_PAGE, 0)
    web.page.click("#next-page")
    web.page.wait_for_url(re.compile(r"page=2"))
    _wait_gallery(web, PER_PAGE, PER_PAGE)
    assert _shown_indices(web) == list(range(PER_PAGE, 2 * PER_PAGE))
    web.page.click("#next-page")
    _wait_gallery(web, DEMO_TRAIN - 2 * PER_PAGE, 2 * PER_PAGE)
    assert _shown_indices(web) == list(range(2 * PER_PAGE, DEMO_TRAIN))
    assert web.page.is_disabled("#next-page")
    web.page.go_back()
    web.page.wait_for_url(re.compile(r"page=2"))
    _wait_gallery(web, PER_PAGE, PER_PAGE)
    assert _shown_indices(web)[0] == PER_PAGE
    web.page.fill("#page-number", "1")
    web.page.press("#page-number", "Enter")
    _wait_gallery(web, PER_PAGE, 0)
    assert _shown_indices(web)[0] == 0
    assert web.page.is_disabled("#prev-page")
    _clean(web)


def test_gallery_filters_by_class_present(web: Watched, screenshots: Path) -> None:
    web.goto("/browse/train")
    _wait_gallery(web, PER_PAGE, 0)
    if web.page.get_attribute("body", "data-presence") != "yes":
        pytest.skip("this server has no list of samples by class")
    chosen = 15  # person
    web.page.select_option("#class-filter", str(chosen))
    web.page.wait_for_url(re.compile(rf"class={chosen}"))
    web.page.wait_for_function(
        "n => document.querySelector('#gallery-summary').textContent.includes('person')", arg=chosen
    )
    count = len(_shown_indices(web))
    _wait_gallery(web, count)
    shown = _shown_indices(web)
    assert 0 < len(shown) < PER_PAGE or len(shown) == PER_PAGE
    for index in shown:
        label = web.page.request.get(f"{web.origin}/v1/splits/train/samples/{index}/label").body()
        assert chosen in np.load(io.BytesIO(label)), f"sample {index} has no class {chosen}"
    titles = web.page.eval_on_selector_all(".gallery .thumb", "links => links.map(a => a.title)")
    assert all("person" in title for title in titles), titles
    web.page.screenshot(path=screenshots / "gallery-person.png")
    _clean(web)


def test_gallery_opacity_slider_changes_the_overlay(web: Watched) -> None:
    web.goto("/browse/train")
    _wait_gallery(web, PER_PAGE, 0)
    first = web.page.locator(".gallery .thumb .pictures").first
    opacity = "() => getComputedStyle(document.querySelector('.gallery img.label')).opacity"
    web.page.fill("#opacity", "0")
    assert web.page.evaluate(opacity) == "0"
    hidden = _picture(first.screenshot())
    web.page.fill("#opacity", "100")
    assert web.page.evaluate(opacity) == "1"
    shown = _picture(first.screenshot())
    assert np.abs(hidden - shown).mean() > 5, "the label did not show over the image"
    assert "opacity=100" in web.page.url
    _clean(web)


def test_a_click_opens_the_sample_page(web: Watched, screenshots: Path) -> None:
    web.goto("/browse/train")
    _wait_gallery(web, PER_PAGE, 0)
    web.page.click(".gallery .thumb[data-index='5']")
    web.page.wait_for_url(re.compile(r"/browse/train/5$"))
    for picture in ("#sample-image", "#sample-label", "#overlay-label", "#crop-image"):
        web.page.wait_for_selector(f"{picture}[data-ready]")
    info = web.page.request.get(f"{web.origin}/v1/splits/train/samples/5").json()
    assert info["id"] in _text(web, "#title")
    shares = web.page.eval_on_selector_all(
        "#classes .share", "cells => cells.map(c => c.textContent)"
    )
    assert shares
    assert sum(float(share.rstrip("%")) for share in shares) == pytest.approx(100, abs=0.5)
    label = np.load(
        io.BytesIO(web.page.request.get(f"{web.origin}/v1/splits/train/samples/5/label").body())
    )
    listed = web.page.eval_on_selector_all(
        "#classes tr[data-class]", "rows => rows.map(r => +r.dataset.class)"
    )
    assert sorted(listed) == sorted(np.unique(label).tolist())
    calls = web.page.eval_on_selector_all(
        "#api-calls input.url", "inputs => inputs.map(i => i.value)"
    )
    assert any("/crop?" in call and "format=png" in call for call in calls)
    curls = web.page.eval_on_selector_all(
        "#api-calls input.curl", "inputs => inputs.map(i => i.value)"
    )
    assert all(curl.startswith("curl ") for curl in curls)
    web.page.screenshot(path=screenshots / "sample.png", full_page=True)
    _clean(web)


def test_sample_overlay_and_crop_follow_their_controls(web: Watched, screenshots: Path) -> None:
    web.goto("/browse/train/7")
    web.page.wait_for_selector("#overlay-label[data-ready]")
    web.page.wait_for_selector("#crop-image[data-ready]")
    overlay = web.page.locator("#overlay")
    web.page.fill("#opacity", "0")
    bare = _picture(overlay.screenshot())
    web.page.fill("#opacity", "90")
    covered = _picture(overlay.screenshot())
    assert np.abs(bare - covered).mean() > 5

    crop = web.page.locator("#crop-image")
    web.page.fill("#crop-height", "120")
    web.page.fill("#crop-width", "160")
    web.page.wait_for_function(
        "() => /height=120&width=160/.test(document.querySelector('#crop-image').dataset.url)"
    )
    web.page.wait_for_selector("#crop-image[data-ready]")
    before, url = _picture(crop.screenshot()), crop.get_attribute("data-url")
    web.page.click("#new-seed")
    web.page.wait_for_function(
        "url => document.querySelector('#crop-image').dataset.url !== url", arg=url
    )
    web.page.wait_for_selector("#crop-image[data-ready]")
    after = _picture(crop.screenshot())
    assert before.shape == after.shape
    assert np.abs(before - after).mean() > 1, "a new seed drew the same crop"
    seed = web.page.input_value("#crop-seed")
    assert f"seed={seed}" in (crop.get_attribute("data-url") or "")
    assert f"seed {seed}" in _text(web, "#crop-caption")

    url = crop.get_attribute("data-url")
    web.page.check("#crop-flip")
    web.page.fill("#crop-scale", "0.5,2.0")
    web.page.wait_for_function(
        "() => /flip=true.*scale=0.5/.test(document.querySelector('#crop-image').dataset.url)"
    )
    web.page.wait_for_selector("#crop-image[data-ready]")
    assert crop.get_attribute("data-url") != url
    web.page.screenshot(path=screenshots / "sample-crop.png", full_page=True)
    _clean(web)


def test_a_bad_crop_parameter_shows_the_problem(web: Watched) -> None:
    web.goto("/browse/train/7")
    web.page.wait_for_selector("#crop-image[data-ready]")
    web.page.fill("#crop-scale", "3,1")
    web.page.wait_for_selector("#crop-error:not([hidden])")
    assert "scale" in _text(web, "#crop-error")
    errors = [e for e in web.errors if "422" not in e]
    assert errors == []


def test_dataset_page_counts_usable_samples_per_crop(web: Watched, screenshots: Path) -> None:
    web.goto("/browse")
    web.page.wait_for_selector("#splits tr[data-split='train']")
    usable = "() => document.querySelector(\"#splits tr[data-split='train'] .usable\").textContent"
    expected = web.page.request.get(f"{web.origin}/v1/splits/train?height=320&width=480").json()
    assert web.page.evaluate(usable) == str(expected["usable"])
    assert web.page.locator("#legend tbody tr").count() == 22
    web.page.fill("#crop-height", "400")
    web.page.wait_for_function(f"() => ({usable})() !== '{expected['usable']}'")
    tall = web.page.request.get(f"{web.origin}/v1/splits/train?height=400&width=480").json()
    assert web.page.evaluate(usable) == str(tall["usable"])
    if web.page.get_attribute("body", "data-stats") == "yes":
        web.page.wait_for_function(
            "() => document.querySelectorAll('#stats img[data-ready]').length === 3"
        )
        calls = web.page.eval_on_selector_all(
            "#api-calls input.url", "inputs => inputs.map(i => i.value)"
        )
        assert any(call.endswith("/v1/splits/val/stats?format=png") for call in calls)
    web.page.screenshot(path=screenshots / "dataset.png", full_page=True)
    _clean(web)


def test_the_token_is_asked_once_and_sent_as_a_header(
    token_web: Watched, screenshots: Path
) -> None:
    web = token_web
    web.goto("/browse/train")
    dialog = web.page.locator("#token-dialog")
    dialog.wait_for(state="visible")
    web.page.screenshot(path=screenshots / "token.png")
    web.page.fill("#token-input", "not-the-token")
    web.page.click("#token-submit")
    web.page.wait_for_function("() => document.querySelector('#token-message').textContent !== ''")
    assert "refused" in _text(web, "#token-message")
    web.page.fill("#token-input", TOKEN)
    web.page.click("#token-submit")
    _wait_gallery(web, PER_PAGE, 0)
    web.page.click(".gallery .thumb[data-index='2']")
    web.page.wait_for_selector("#crop-image[data-ready]")
    assert not dialog.is_visible(), "the token was asked for again"
    api = [r for r in web.requests if "/v1/" in r.url]
    assert api
    assert all(TOKEN not in r.url for r in web.requests)
    sent = {r.headers.get("authorization") for r in api}
    assert f"Bearer {TOKEN}" in sent
    assert sent <= {f"Bearer {TOKEN}", "Bearer not-the-token"}
    assert all("401" in e for e in web.errors), web.errors  # the refused token, nothing else
    assert web.outside_requests() == []


RECIPE_CONTROLS = {
    "photometric": ("check", "#crop-photometric", None, "photometric=true"),
    "crop_mode": ("select", "#crop-mode", "center", "crop_mode=center"),
    "cat_max_ratio": ("fill", "#crop-cat-max-ratio", "0.75", "cat_max_ratio=0.75"),
}


@pytest.mark.parametrize("parameter", sorted(RECIPE_CONTROLS))
def test_recipe_parameters_reach_the_crop(web: Watched, parameter: str) -> None:
    web.goto("/browse/train/9")
    web.page.wait_for_selector("#crop-image[data-ready]")
    offered = (web.page.get_attribute("body", "data-crop-params") or "").split(",")
    if parameter not in offered:
        pytest.skip(f"this server's crop endpoint has no {parameter}")
    action, selector, value, expected = RECIPE_CONTROLS[parameter]
    assert web.page.is_visible(selector)
    url = web.page.get_attribute("#crop-image", "data-url")
    if action == "check":
        web.page.check(selector)
    elif action == "select":
        web.page.select_option(selector, value)
    else:
        web.page.fill(selector, value or "")
    web.page.wait_for_function(
        "([url, part]) => { const now = document.querySelector('#crop-image').dataset.url;"
        " return now !== url && now.includes(part); }",
        arg=[url, expected],
    )
    web.page.wait_for_selector("#crop-image[data-ready]")
    _clean(web)
