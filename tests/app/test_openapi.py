"""The OpenAPI document: security only with a token, and each problem response's own example."""

from __future__ import annotations

from typing import Any

import pytest

from app.main import create_app_with_config
from app.problems import PROBLEM_MEDIA_TYPE
from service.config import Settings


def document(**settings: Any) -> dict[str, Any]:
    app = create_app_with_config(Settings(data_root=None, **settings))
    return app.openapi()


def operations(openapi: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (path, operation)
        for path, methods in openapi["paths"].items()
        for operation in methods.values()
    ]


def test_no_security_is_declared_without_a_token() -> None:
    openapi = document()
    assert "securitySchemes" not in openapi.get("components", {})
    assert [path for path, op in operations(openapi) if "security" in op] == []
    assert [path for path, op in operations(openapi) if "401" in op["responses"]] == []


def test_with_a_token_every_v1_operation_declares_the_bearer_scheme() -> None:
    openapi = document(api_token="secret")
    assert openapi["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path, operation in operations(openapi):
        declared = "security" in operation
        assert declared == path.startswith("/v1"), path


@pytest.mark.parametrize("token", [None, "secret"])
def test_each_problem_response_shows_an_example_of_its_own_status(token: str | None) -> None:
    seen = set()
    for path, operation in operations(document(api_token=token)):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            example = response["content"][PROBLEM_MEDIA_TYPE]["example"]
            assert example["status"] == int(status), (path, status)
            assert example["detail"], (path, status)
            assert example["title"], (path, status)
            seen.add(int(status))
    assert seen >= {404, 422, 503} | ({401} if token else set())
