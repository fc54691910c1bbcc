"""A warm start stays short: what serving does not need is not imported, and nothing on the
request path waits for a worker thread or for the OpenAPI document."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import app.deps
from tests.app.conftest import MakeApp, TestClient, wait_ready

# Imported only when used: a progress bar on a terminal, the demo dataset without a data
# root, the trainer's request layer of the client package (the server uses its protocol).
LAZY = ("tqdm", "service.demo", "segserve_client.http", "tenacity")


def test_starting_a_server_does_not_import_what_serving_does_not_need() -> None:
    code = "import sys, app.cli, app.server; print(' '.join(sorted(sys.modules)))"
    loaded = set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                text=True).stdout.split())  # fmt: skip
    assert "app.main" in loaded
    assert loaded.isdisjoint(LAZY)


def test_every_dependency_runs_on_the_event_loop() -> None:
    # FastAPI runs a plain `def` dependency in its thread pool: a thread hop per
    # dependency and request, and the pool's start on the first /readyz.
    functions = inspect.getmembers(app.deps, inspect.isfunction)
    ours = [function for _, function in functions if function.__module__ == app.deps.__name__]
    assert ours
    assert all(inspect.iscoroutinefunction(function) for function in ours)


def test_the_parameters_an_endpoint_takes_are_those_its_openapi_operation_lists(
    make_app: MakeApp,
) -> None:
    app = make_app(api_token="secret")
    values = {"split": "train", "index": "0", "batch": "0", "epoch": "0"}
    with TestClient(app, headers={"Authorization": "Bearer secret"}) as client:
        wait_ready(app)
        operations = client.get("/openapi.json").json()["paths"]
        checked = 0
        for path, methods in operations.items():
            if not path.startswith("/v1/") or "get" not in methods:
                continue
            parameters = methods["get"].get("parameters", [])
            listed = sorted(p["name"] for p in parameters if p["in"] == "query")
            url = re.sub(r"\{(\w+)\}", lambda match: values[match[1]], path)
            response = client.get(url, params={"zz_unknown": "1"})
            assert response.status_code == 422, (path, response.text)
            takes = ", ".join(listed) or "no query parameters"
            expected = f"zz_unknown: unknown parameter; this endpoint takes: {takes}"
            assert response.json()["detail"] == expected, path
            checked += 1
    assert checked >= 10
