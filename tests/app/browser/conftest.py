"""Fixtures of the Chromium tests: live servers over a demo dataset, and a headless Chromium.

Debian's ``chromium`` (``/usr/bin/chromium``, installed by ``make pytest`` through
``tools/browser/install-chromium.sh``) is driven by the ``playwright`` package;
playwright's own browser download is never used. Without either, the tests that
need them skip, saying which is missing. Screenshots go to ``$SEGSERVE_SCREENSHOTS``
when it is set (to look at them), else to a temporary folder.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from app.main import create_app_with_config
from service.config import Settings
from tests.app.conftest import READY_SECONDS, TestClient, wait_ready

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN = "browser-test-token"
DEMO_TRAIN, DEMO_VAL = 50, 10  # 50 train images: gallery pages of 24, 24 and 2
VIEWPORT = {"width": 1280, "height": 900}


@dataclass
class LiveServer:
    """An app served by uvicorn on 127.0.0.1 in a thread."""

    app: FastAPI
    origin: str


@contextmanager
def serve(app: FastAPI) -> Iterator[LiveServer]:
    """Serve ``app`` on a free loopback port until the block ends; its dataset is loaded."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue up until the server accepts them: no start-up wait
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        port = sock.getsockname()[1]
        live = LiveServer(app, f"http://127.0.0.1:{port}")
        wait_ready(app)
        yield live
    finally:
        server.should_exit = True
        thread.join(READY_SECONDS)
        sock.close()


@pytest.fixture(scope="module")
def shared_client(voc_root: Path, cache_dir: Path) -> Iterator[TestClient]:
    """One client of an app over the test dataset (no token) for a module's read-only tests."""
    app = create_app_with_config(Settings(data_root=voc_root, cache_dir=cache_dir, api_token=None))
    with TestClient(app) as client:
        wait_ready(app)
        yield client


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the demo dataset (VOC-sized pictures), shared by the servers."""
    return tmp_path_factory.mktemp("browser-cache")


def _settings(cache_dir: Path, token: str | None) -> Settings:
    return Settings(
        data_root=None,
        cache_dir=cache_dir,
        demo_train=DEMO_TRAIN,
        demo_val=DEMO_VAL,
        demo_seed=0,
        api_token=None if token is None else SecretStr(token),
    )


@pytest.fixture(scope="module")
def server(demo_cache: Path) -> Iterator[LiveServer]:
    """A live server of the demo dataset, without a token."""
    with serve(create_app_with_config(_settings(demo_cache, None))) as live:
        yield live


@pytest.fixture(scope="module")
def token_server(demo_cache: Path) -> Iterator[LiveServer]:
    """A live server of the demo dataset that wants the bearer token ``TOKEN``."""
    with serve(create_app_with_config(_settings(demo_cache, TOKEN))) as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by playwright (skips when either is missing)."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make pytest does, as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page and what it did: console errors, page errors, every request it sent."""

    page: Page
    origin: str
    errors: list[str] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def outside_requests(self) -> list[str]:
        """URLs of requests to another origin than the server's (blob: URLs are in-page)."""
        own = urlsplit(self.origin)
        return [
            request.url
            for request in self.requests
            if urlsplit(request.url).scheme not in ("blob", "data")
            and urlsplit(request.url)[:2] != own[:2]
        ]

    def goto(self, path: str) -> None:
        self.page.goto(self.origin + path)


def watch(browser: Browser, live: LiveServer) -> Iterator[Watched]:
    """A fresh context (no stored token) and page on ``live``, its errors and requests recorded."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = context.new_page()
    watched = Watched(page, live.origin)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: watched.errors.append(f"page error: {error}"))
    page.on("request", lambda request: watched.requests.append(request))
    page.set_default_timeout(30_000)
    try:
        yield watched
    finally:
        context.close()


@pytest.fixture
def web(browser: Browser, server: LiveServer) -> Iterator[Watched]:
    """A page of the server without a token."""
    yield from watch(browser, server)


@pytest.fixture
def token_web(browser: Browser, token_server: LiveServer) -> Iterator[Watched]:
    """A page of the server that wants a token."""
    yield from watch(browser, token_server)


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$SEGSERVE_SCREENSHOTS``, or a temporary folder."""
    chosen = os.environ.get("SEGSERVE_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
