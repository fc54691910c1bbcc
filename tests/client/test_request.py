"""BatchRequest: one typed object of every batch and crop parameter, and its queries."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from segserve_client import BatchRequest, RequestError
from segserve_client.request import ENDPOINTS


def test_batch_query_has_every_parameter_as_the_server_parses_it() -> None:
    request = BatchRequest(320, 480, batch_size=16, seed=7, scale=(0.5, 2), flip=True)
    assert request.query("batch") == {
        "height": "320",
        "width": "480",
        "batch_size": "16",
        "seed": "7",
        "epoch": "0",
        "shuffle": "true",
        "drop_last": "true",
        "small": "drop",
        "void": "ignore",
        "flip": "true",
        "scale": "0.5,2.0",
        "dtype": "uint8",
    }  # layout None: left to the server's default for the dtype


def test_each_endpoint_gets_only_its_parameters() -> None:
    request = BatchRequest(32, 48, layout="nchw")
    assert set(request.query("split")) == {"height", "width", "batch_size", "drop_last", "small"}
    assert "epoch" not in request.query("stream")  # the stream has it in its path
    crop = request.query("crop")
    assert {"batch_size", "shuffle", "drop_last"}.isdisjoint(crop)
    assert crop["layout"] == "nchw"
    assert BatchRequest(32, 48, seed=None).query("crop").get("seed") is None


def test_every_field_goes_to_some_endpoint() -> None:
    for field in dataclasses.fields(BatchRequest):
        endpoints = field.metadata["endpoints"]
        assert endpoints, field.name
        assert endpoints <= set(ENDPOINTS), field.name


def test_frozen_hashable_and_replace_checks_again() -> None:
    request = BatchRequest(32, 48)
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.epoch = 3  # type: ignore[misc]
    assert hash(request) == hash(BatchRequest(32, 48))
    assert request.replace(epoch=3).epoch == 3
    assert request.crop_size == (32, 48)
    with pytest.raises(RequestError, match="epoch"):
        request.replace(epoch=-1)


def test_of_builds_or_overrides() -> None:
    base = BatchRequest(32, 48, seed=3)
    assert BatchRequest.of(base) is base
    assert BatchRequest.of(base, seed=4) == BatchRequest(32, 48, seed=4)
    assert BatchRequest.of(height=32, width=48, seed=3) == base
    with pytest.raises(TypeError, match="batchsize"):
        BatchRequest.of(height=32, width=48, batchsize=4)  # a typo is not sent silently


def test_resolved_layout_follows_the_dtype() -> None:
    assert BatchRequest(8, 8).resolved_layout == "nhwc"
    assert BatchRequest(8, 8, dtype="float32").resolved_layout == "nchw"
    assert BatchRequest(8, 8, dtype="float32", layout="nhwc").resolved_layout == "nhwc"


@pytest.mark.parametrize(
    ("changes", "name", "detail"),
    [
        ({"height": 0}, "height", ">= 1"),
        ({"width": 2.5}, "width", "integer"),
        ({"batch_size": True}, "batch_size", "integer"),
        ({"seed": -1}, "seed", ">= 0"),
        ({"seed": 2**63}, "seed", "<= 9223372036854775807"),
        ({"epoch": -2}, "epoch", ">= 0"),
        ({"shuffle": "false"}, "shuffle", "True or False"),
        ({"flip": 1}, "flip", "True or False"),
        ({"small": "crop"}, "small", "drop, pad"),
        ({"void": "zero"}, "void", "ignore, background"),
        ({"dtype": "float16"}, "dtype", "uint8, float32"),
        ({"layout": "chw"}, "layout", "nhwc, nchw"),
        ({"scale": (2.0, 0.5)}, "scale", "lo <= hi"),
        ({"scale": (0.0, 1.0)}, "scale", "0 < lo"),
        ({"scale": (0.5, 17.0)}, "scale", "<= 16"),
        ({"scale": 0.5}, "scale", "two numbers"),
        ({"scale": (0.5, float("nan"))}, "scale", "two numbers"),
    ],
)
def test_client_side_mistakes_name_the_parameter(
    changes: dict[str, Any], name: str, detail: str
) -> None:
    with pytest.raises(RequestError) as caught:
        BatchRequest(**{"height": 32, "width": 48, **changes})
    assert caught.value.name == name
    assert detail in caught.value.detail
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith(f"{name}: ")


def test_recipe_parameters_are_sent_only_when_set() -> None:
    plain = BatchRequest(512, 512)
    assert {"cat_max_ratio", "photometric", "crop_mode"}.isdisjoint(plain.query("batch"))
    recipe = plain.replace(cat_max_ratio=0.75, photometric=True, scale=(0.5, 2.0), small="pad")
    batch = recipe.query("batch")
    assert (batch["cat_max_ratio"], batch["photometric"]) == ("0.75", "true")
    assert recipe.query("crop")["photometric"] == "true"
    assert "cat_max_ratio" not in recipe.query("split")
    full = BatchRequest(500, 500, crop_mode="full")
    assert full.query("split")["crop_mode"] == full.query("stream")["crop_mode"] == "full"


@pytest.mark.parametrize(
    ("changes", "name", "detail"),
    [
        ({"cat_max_ratio": 0}, "cat_max_ratio", "> 0 and <= 1"),
        ({"cat_max_ratio": 1.5}, "cat_max_ratio", "> 0 and <= 1"),
        ({"cat_max_ratio": float("nan")}, "cat_max_ratio", "> 0"),
        ({"cat_max_ratio": True}, "cat_max_ratio", "> 0"),
        ({"photometric": "yes"}, "photometric", "True or False"),
        ({"crop_mode": "middle"}, "crop_mode", "one of random, center, full"),
    ],
)
def test_recipe_parameters_are_checked(changes: dict[str, Any], name: str, detail: str) -> None:
    with pytest.raises(RequestError, match=name) as raised:
        BatchRequest(32, 48, **changes)
    assert detail in str(raised.value)
