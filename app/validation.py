"""Turn FastAPI's validation errors into one sentence that names the parameter and its range.

The range comes from the parameter's schema in the app's OpenAPI document (the
``minimum``/``maximum``/``enum`` that ``Query(ge=, le=)`` and ``Literal`` put there),
so the message and the documentation say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute


def describe_validation_error(request: Request, errors: Sequence[Any]) -> str:
    """``"<name>: must be <range>, got <input>"`` for each failing parameter, joined by ``"; "``."""
    schemas = _parameter_schemas(request)
    return "; ".join(_describe_one(error, schemas) for error in errors)


def _describe_one(error: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]) -> str:
    location = [str(part) for part in error.get("loc", ())]
    name = location[-1] if location else "request"
    schema = schemas.get(name)
    allowed = describe_schema(schema) if schema is not None else None
    if error.get("type") == "missing":
        return f"{name}: required" + (f", must be {allowed}" if allowed else "")
    if allowed is None:
        return f"{name}: {error.get('msg', 'invalid value')}"
    return f"{name}: must be {allowed}, got {error.get('input')!r}"


def describe_schema(schema: Mapping[str, Any]) -> str:
    """A JSON schema of a parameter as words: ``an integer between 1 and 256``, ``one of a, b``."""
    options = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    schema = options[0] if len(options) == 1 else schema
    if "const" in schema:
        return str(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(str(value) for value in schema["enum"])
    kind = {"integer": "an integer", "number": "a number", "boolean": "true or false"}.get(
        schema.get("type", ""), "a valid value"
    )
    low, high = schema.get("minimum"), schema.get("maximum")
    above = schema.get("exclusiveMinimum")
    if above is not None:
        return f"{kind} > {above}" + (f" and <= {high}" if high is not None else "")
    if low is not None and high is not None:
        return f"{kind} between {low} and {high}"
    if low is not None:
        return f"{kind} >= {low}"
    if high is not None:
        return f"{kind} <= {high}"
    if "pattern" in schema:
        return f"a string matching {schema['pattern']}"
    return kind


def unknown_query_parameters(request: Request) -> tuple[list[str], list[str]]:
    """Query parameters of ``request`` its route does not take, and those it takes.

    Read from the route's dependencies, not the OpenAPI document that lists the
    same ones: building that document takes longer than any request (about
    0.14 s), and every ``/v1`` request asks this, the first one included.
    """
    route = request.scope.get("route")
    known = _query_names(route) if isinstance(route, APIRoute) else []
    unknown = sorted(set(request.query_params) - set(known))
    return unknown, known


def _query_names(route: APIRoute) -> list[str]:
    """The names of the query parameters ``route`` and its dependencies take, sorted."""
    return sorted(set(_query_aliases(route.dependant)))


def _query_aliases(dependant: Dependant) -> Iterator[str]:
    yield from (field.alias for field in dependant.query_params)
    for dependency in dependant.dependencies:
        yield from _query_aliases(dependency)


def _parameter_schemas(request: Request) -> dict[str, Mapping[str, Any]]:
    """Schema of each parameter of the matched route, from the app's OpenAPI document."""
    return {
        parameter["name"]: parameter.get("schema", {})
        for parameter in _operation(request).get("parameters", [])
    }


def _operation(request: Request) -> Mapping[str, Any]:
    """The OpenAPI operation of the matched route (empty when there is none)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return {}
    paths = request.app.openapi().get("paths", {})
    operation: Mapping[str, Any] = paths.get(route.path_format, {}).get(request.method.lower(), {})
    return operation
