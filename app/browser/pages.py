"""``/browse``: the dataset, a split's gallery and one sample, as HTML pages.

The pages hold no data: they are shells whose scripts (``static/``) fetch
everything from ``/v1`` with the bearer token when the server has one, so the
pages themselves stay open and never embed anything the token protects. What a
page does need from the server (which page it is, whether a token is wanted,
which optional endpoints and crop parameters this server has) goes into
``data-`` attributes of its ``<body>``. Templates are :class:`string.Template`
files: the pages substitute a handful of escaped values and need no template
engine.
"""

from __future__ import annotations

import html
from functools import cache
from importlib.resources import files
from string import Template
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from app.deps import SettingsDep

PREFIX: Final = "/browse"
STATIC: Final = f"{PREFIX}/_static"
STATS_PATH: Final = "/v1/splits/{split}/stats"
CROP_PATH: Final = "/v1/splits/{split}/crop"
SAMPLES_PATH: Final = "/v1/splits/{split}/samples"  # samples by the classes they contain

# Every asset comes from this server: the browser refuses anything else, so a
# page that works here also works on a machine without internet access.
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}

router = APIRouter(prefix=PREFIX, include_in_schema=False)

SampleIndex = Annotated[int, Path(ge=0)]


def install_browser(app: FastAPI) -> None:
    """Serve the pages under ``/browse`` and their scripts and styles under ``/browse/_static``."""
    static = StaticFiles(directory=str(files("app.browser") / "static"))
    app.mount(STATIC, static, name="browse-static")
    app.include_router(router)


@router.get("", response_class=HTMLResponse)
def dataset_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The dataset: splits and usable counts, excluded files, class legend, class statistics."""
    return _page(request, settings, "dataset", "Dataset", {})


@router.get("/{split}", response_class=HTMLResponse)
def gallery_page(request: Request, settings: SettingsDep, split: str) -> HTMLResponse:
    """A split's gallery: thumbnails with the label overlaid, paging, a class filter."""
    return _page(request, settings, "gallery", f"{split} gallery", {"split": split})


@router.get("/{split}/{index}", response_class=HTMLResponse)
def sample_page(
    request: Request, settings: SettingsDep, split: str, index: SampleIndex
) -> HTMLResponse:
    """One sample: image, label, overlay, its classes, a crop preview, the API calls behind it."""
    context = {"split": split, "index": str(index)}
    return _page(request, settings, "sample", f"{split} #{index}", context)


def _page(
    request: Request, settings: SettingsDep, name: str, title: str, data: dict[str, str]
) -> HTMLResponse:
    """The page ``name`` in the common shell, with ``data`` as ``data-`` attributes of its body."""
    root = request.scope.get("root_path", "")
    attributes = {
        "page": name,
        "base": root,
        "token": "required" if settings.api_token is not None else "none",
        "stats": "yes" if _has_route(request.app, STATS_PATH) else "no",
        "presence": "yes" if _has_route(request.app, SAMPLES_PATH) else "no",
        "crop-params": ",".join(_query_parameters(request.app, CROP_PATH)),
        **data,
    }
    body = _template(name).substitute(title=html.escape(title))
    page = _template("shell").substitute(
        title=html.escape(title),
        static=html.escape(root + STATIC, quote=True),
        home=html.escape(root + PREFIX, quote=True),
        docs=html.escape(root + "/docs", quote=True),
        attributes=" ".join(
            f'data-{key}="{html.escape(value, quote=True)}"' for key, value in attributes.items()
        ),
        script=name,
        body=body,
    )
    return HTMLResponse(page, headers=_SECURITY_HEADERS)


@cache
def _template(name: str) -> Template:
    """The template ``templates/<name>.html`` (read once)."""
    return Template((files("app.browser") / "templates" / f"{name}.html").read_text("utf-8"))


def _has_route(app: FastAPI, path: str) -> bool:
    """Whether ``app`` serves GET ``path`` (an optional endpoint the pages use when it is there)."""
    return "get" in _operations(app).get(path, {})


def _operations(app: FastAPI) -> dict[str, Any]:
    """The ``paths`` of the app's OpenAPI document: what this server serves, and how."""
    paths: dict[str, Any] = app.openapi().get("paths", {})
    return paths


def _query_parameters(app: FastAPI, path: str) -> list[str]:
    """Names of the query parameters GET ``path`` takes, from the app's OpenAPI document."""
    operation = _operations(app).get(path, {}).get("get", {})
    return [p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"]
