"""Property tests of the whole API from its own OpenAPI document (schemathesis).

Every generated request, valid or not, must get a documented status with a
documented content type and a body matching its schema, and never a 5xx. The
document is read from an app built here (it does not depend on the data); the
requests go to a running app over the test dataset.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from app.main import create_app_with_config
from service.config import Settings
from tests.app.conftest import MakeApp, TestClient, wait_ready

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"max-examples": 12},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # A request the schema allows can still be refused with 422 for what no
            # schema states: a crop larger than every image of the split, an array
            # too large for JSON, a batch over the memory limit.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "404", "422"],
            },
        },
    }
)

TOKEN = "schema-test-token"  # the server checks it, so schemathesis can test wrong ones

schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app_with_config(Settings(data_root=None)), config=CONFIG
)


@pytest.fixture
def running_app(make_app: MakeApp) -> Iterator[FastAPI]:
    """An app over the test dataset with a token, lifespan started and dataset loaded."""
    app = make_app(api_token=TOKEN, max_crop_pixels=512 * 512, max_batch_bytes=32 * 2**20)
    with TestClient(app):
        wait_ready(app)
        yield app


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, running_app: FastAPI) -> None:
    case.call_and_validate(app=running_app, headers={"Authorization": f"Bearer {TOKEN}"})
