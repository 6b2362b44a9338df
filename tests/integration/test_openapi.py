"""The OpenAPI document validates and describes what the handlers really check (finding 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from openapi_spec_validator import validate

import api
import webhooks
from control.api_v1 import GuildConfigChange, RevocationRequest
from control.openapi import build_document
from control.params import MAX_PAGE, PageQuery
from harness.signing import settings_overrides
from utils.config import Settings


@pytest.fixture
def document(make_settings: Callable[..., Settings]) -> dict[str, Any]:
    # Every sender on: a disabled sender has no route, so nothing to document.
    return build_document(api.create_app(make_settings(**settings_overrides())))


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, operation) for path, methods in document["paths"].items()
            for method, operation in methods.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    name = schema["$ref"].rsplit("/", 1)[1]
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_the_document_validates(document: dict[str, Any]) -> None:
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert {"liveness_health", "liveness_healthz"} <= set(ids)  # was one id for both paths


def test_request_bodies_come_from_the_models_handlers_validate_with(
        document: dict[str, Any]) -> None:
    paths = document["paths"]
    expected = {("/api/v1/guilds/{guild_id}/config", "put"): GuildConfigChange,
                ("/api/v1/auth/revocations", "post"): RevocationRequest}
    expected.update({(spec.path, "post"): spec.payload_model for spec in webhooks.WEBHOOKS})
    for (path, method), model in expected.items():
        schema = paths[path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert resolve(document, schema)["properties"].keys() == \
            model.model_json_schema(by_alias=True)["properties"].keys(), path
    bodies = {(path, method) for method, path, operation in operations(document)
              if "requestBody" in operation}
    assert bodies == set(expected)


def test_query_and_path_parameters_are_declared(document: dict[str, Any]) -> None:
    audit = document["paths"]["/api/v1/guilds/{guild_id}/audit"]["get"]
    by_name = {parameter["name"]: parameter for parameter in audit["parameters"]}
    assert by_name["guild_id"]["schema"]["pattern"] == "^[0-9]{1,20}$"
    assert by_name["limit"]["in"] == "query"
    assert by_name["limit"]["schema"]["maximum"] == MAX_PAGE
    assert PageQuery.model_fields["limit"].default == by_name["limit"]["schema"]["default"]
    search = document["paths"]["/api/v1/knowledge/search"]["get"]
    assert [(p["name"], p["required"]) for p in search["parameters"]] == [
        ("limit", False), ("offset", False), ("q", True)]


def test_every_operation_declares_success_and_error_answers(document: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/ErrorBody"}
    not_built_yet: set[str] = set()
    for method, path, operation in operations(document):
        answers = operation["responses"]
        succeeds = any(status.startswith(("2", "3")) for status in answers)  # 303: sign-in
        assert succeeds or path in not_built_yet, path
        assert answers["default"]["content"]["application/json"]["schema"] == error
        assert answers["429"]["content"]["application/json"]["schema"] == error
        if path.startswith("/api/v1/"):
            assert {"401", "403", "503"} <= answers.keys(), (method, path)
    assert set(resolve(document, error)["required"]) == {"detail", "request_id"}


def test_stateful_links_name_real_operations(document: dict[str, Any]) -> None:
    ids = {operation["operationId"] for _, _, operation in operations(document)}
    links = [link for _, _, operation in operations(document)
             for answer in operation["responses"].values() for link in
             answer.get("links", {}).values()]
    assert links
    assert {link["operationId"] for link in links} <= ids
