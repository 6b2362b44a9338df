"""GET /openapi.json: an OpenAPI 3.1 document built from the router and the handlers' own
declarations, so it cannot drift from the code.

Every route the application serves appears with the summary from its handler's docstring, the
scope its policy needs, its path parameters (with the pattern `path_id` enforces), its query
parameters and request body (from the very pydantic models `@query` and `@body` validate with;
a webhook's from its sender's payload model), its success answers (`@responds`) and the error
answers it can give, all in the JSON error shape. The document validates against the OpenAPI
3.1 schema (tests/integration/test_openapi.py runs openapi-spec-validator on it).
"""

from __future__ import annotations

import inspect
import json
import re
import weakref
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import models_json_schema

import webhooks
from control.params import BODY_ATTRIBUTE, QUERY_ATTRIBUTE, RESPONSES_ATTRIBUTE, responds
from control.policy import policy_of
from edge.app_keys import SETTINGS
from edge.errors import ErrorBody
from utils.config import Settings
from utils.ids import DISCORD_ID_PATTERN

__all__ = ["build_document", "openapi_document"]

_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
REF = "#/components/schemas/{model}"
# Every path parameter is read with `path_id`: a Discord id in ASCII digits.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "guild_id": {"type": "string", "pattern": DISCORD_ID_PATTERN,
                 "description": "a Discord id (1 to 2**63-1) in ASCII digits"},
}
OPERATOR_PATHS = frozenset({"/metrics", "/api/observability", "/api/observability/history"})
WEBHOOK_HEADERS = {
    "webhook-id": {"type": "string", "pattern": r"^[A-Za-z0-9._:-]{1,128}$"},
    "webhook-timestamp": {"type": "string", "pattern": r"^[0-9]{1,12}$"},
}


class WebhookOutcome(BaseModel):
    """A webhook's 200: processed (with per-sender fields) or a duplicate of a processed one."""

    model_config = ConfigDict(extra="allow")

    status: Literal["processed", "duplicate"] = Field(description="processed or duplicate")


# Stateful fuzzing follows these: what one operation's answer tells the next.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("put", "/api/v1/guilds/{guild_id}/config"): {
        "GetConfigAfterChange": {"operationId": "get_guild_config",
                                 "parameters": {"guild_id": "$request.path.guild_id"}},
        "AuditAfterChange": {"operationId": "get_guild_audit",
                             "parameters": {"guild_id": "$request.path.guild_id"}},
    },
    ("get", "/api/v1/guilds/{guild_id}/config"): {
        "ChangeConfig": {"operationId": "put_guild_config",
                         "parameters": {"guild_id": "$response.body#/guild_id"}},
    },
}


def _error_statuses(method: str, path: str, handler: Any) -> set[int]:
    """The error answers an operation can give (the JSON shape); `default` covers the rest."""
    statuses = {429}  # every route spends a rate budget
    if path.startswith("/api/v1/"):
        statuses |= {401, 403, 503}  # credentials, scope or guild, provider/database/time limit
    if path.startswith("/webhooks/"):
        statuses |= {400, 401, 408, 409, 413, 415, 422, 503}
    if path in OPERATOR_PATHS:
        statuses |= {401, 403, 503}
    if path == "/readyz":
        statuses.add(503)
    if _PARAMETER.search(path) or getattr(handler, QUERY_ATTRIBUTE, None) is not None:
        statuses.add(422)
    if getattr(handler, BODY_ATTRIBUTE, None) is not None:
        statuses |= {400, 408, 413, 415, 422}
    return statuses


class _Schemas:
    """Collects the pydantic models the operations name, then renders them as components."""

    def __init__(self) -> None:
        self.models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = []
        self.refs: dict[tuple[type[BaseModel], str], dict[str, Any]] = {}

    def schema_of(self, model: Any, mode: Literal["validation", "serialization"]
                  ) -> dict[str, Any] | tuple[type[BaseModel], str]:
        if isinstance(model, type) and issubclass(model, BaseModel):
            self.models.append((model, mode))
            return (model, mode)  # resolved in render()
        return TypeAdapter(model).json_schema(mode=mode, ref_template=REF)

    def render(self, document: Any) -> dict[str, Any]:
        mapping, top = models_json_schema(self.models, ref_template=REF)
        refs = {(model, mode): schema for (model, mode), schema in mapping.items()}

        def resolve(value: Any) -> Any:
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], type):
                return refs[value]
            if isinstance(value, dict):
                return {key: resolve(item) for key, item in value.items()}
            if isinstance(value, list):
                return [resolve(item) for item in value]
            return value

        resolved: dict[str, Any] = resolve(document)
        resolved["components"]["schemas"].update(top.get("$defs", {}))
        return resolved


def _json(schema: Any) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(method: str, path: str, handler: Any, operation_id: str,
               schemas: _Schemas, settings: Settings) -> dict[str, Any]:
    doc = inspect.getdoc(handler) or ""
    summary = doc.splitlines()[0] if doc else handler.__name__.replace("_", " ")
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": PATH_PARAMETERS.get(name, {"type": "string"})}
        for name in _PARAMETER.findall(path)]
    query_model = getattr(handler, QUERY_ATTRIBUTE, None)
    if query_model is not None:
        query_schema = query_model.model_json_schema(mode="validation", ref_template=REF)
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required,
                               "schema": schema})
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary}
    if parameters:
        operation["parameters"] = parameters

    body_model = getattr(handler, BODY_ATTRIBUTE, None)
    spec = next((spec for spec in webhooks.WEBHOOKS if spec.path == path), None)
    if spec is not None:
        body_model = spec.payload_model
        # Standard Webhooks headers: required unless body-only signatures are allowed.
        standard_only = not settings.webhook_allow_body_only_signatures
        operation["parameters"] = [{"name": name, "in": "header", "required": standard_only,
                                    "schema": schema} for name, schema in WEBHOOK_HEADERS.items()]
    if body_model is not None:
        operation["requestBody"] = {"required": True,
                                    "content": _json(schemas.schema_of(body_model, "validation"))}

    responses: dict[str, Any] = {}
    declared = dict(getattr(handler, RESPONSES_ATTRIBUTE, {}))
    if spec is not None:
        declared = {200: (WebhookOutcome, "processed, or a duplicate of a processed delivery")}
    for status, (model, description) in sorted(declared.items()):
        answer: dict[str, Any] = {"description": description or HTTPStatus(status).phrase}
        if isinstance(model, str):  # a media type without a schema (Prometheus text)
            answer["content"] = {model: {"schema": {"type": "string"}}}
        elif model is not None:
            answer["content"] = _json(schemas.schema_of(model, "serialization"))
        responses[str(status)] = answer
    error = _json(schemas.schema_of(ErrorBody, "serialization"))
    if path == "/status" or path.startswith("/status/"):
        # A browser's form: a refused sign-in shows the form again, with the reason, as HTML.
        error = {**error, "text/html": {"schema": {"type": "string"}}}
    for status in sorted(_error_statuses(method, path, handler)):
        responses[str(status)] = {"description": HTTPStatus(status).phrase, "content": error}
    responses["default"] = {"description": "any other error, in the same shape",
                            "content": error}
    for status_key, answer in responses.items():
        links = LINKS.get((method, path))
        if links and status_key.startswith("2"):
            answer["links"] = links
    operation["responses"] = responses

    if path.startswith("/api/v1/"):
        rule = policy_of(handler)
        operation["security"] = ([{}] if rule.optional else []) + [
            {"bearer": []}, {"apiKey": []}]
        if rule.scope:
            operation["x-required-scope"] = rule.scope
        if rule.guild_admin:
            operation["x-guild-admin"] = True
    elif spec is not None:
        operation["security"] = [{"webhookSignature": []}]
    elif path in OPERATOR_PATHS:
        operation["security"] = [{"apiKey": []}]
        operation["x-required-scope"] = "observability:read"
    else:
        operation["security"] = []
    return operation


def build_document(app: web.Application) -> dict[str, Any]:
    routes = [(route.method.lower(), _PARAMETER.sub(lambda m: "{" + m.group(1) + "}",
                                                    route.resource.canonical), route.handler)
              for route in app.router.routes()
              if route.method != "HEAD" and route.resource is not None]
    uses: dict[str, int] = {}
    for _, _, handler in routes:
        uses[handler.__name__] = uses.get(handler.__name__, 0) + 1
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in routes:
        name = handler.__name__
        # One handler on several paths (/health, /healthz): the path keeps the ids unique.
        operation_id = name if uses[name] == 1 else \
            f"{name}_{re.sub(r'[^A-Za-z0-9]+', '_', path).strip('_')}"
        paths.setdefault(path, {})[method] = _operation(method, path, handler, operation_id,
                                                        schemas, app[SETTINGS])
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Community bot control API", "version": "1",
                 "description": "Errors are ErrorBody; every response carries X-Request-ID."},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "webhookSignature": {"type": "apiKey", "in": "header",
                                     "name": "webhook-signature"},
            },
        },
    }
    return schemas.render(document)


_built: weakref.WeakKeyDictionary[web.Application, bytes] = weakref.WeakKeyDictionary()


@responds(200, dict[str, Any], "the OpenAPI 3.1 document")
async def openapi_document(request: web.Request) -> web.Response:
    """This document: every route of the API (OpenAPI 3.1)."""
    body = _built.get(request.app)
    if body is None:  # the router is frozen once serving: build once per application
        body = _built[request.app] = json.dumps(build_document(request.app)).encode()
    return web.Response(body=body, content_type="application/json")
