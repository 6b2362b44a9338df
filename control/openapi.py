"""GET /openapi.json: an OpenAPI 3.1 document built from the router itself.

Every route the application serves appears, with the summary from its handler's docstring, the
scope its policy needs, and the JSON error shape; so the document cannot drift from the code.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from aiohttp import web

from control.policy import policy_of

ERROR_SCHEMA = {"type": "object", "required": ["detail", "request_id"], "properties": {
    "detail": {"type": "string"}, "request_id": {"type": "string"}}}
_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")


def _operation(method: str, path: str, handler: Any) -> dict[str, Any]:
    doc = inspect.getdoc(handler) or ""
    summary = doc.splitlines()[0] if doc else handler.__name__.replace("_", " ")
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{handler.__name__}",
        "summary": summary,
        "parameters": [{"name": name, "in": "path", "required": True,
                        "schema": {"type": "string"}} for name in _PARAMETER.findall(path)],
        "responses": {"200": {"description": "OK"},
                      "default": {"description": "Error", "content": {
                          "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
    }
    if path.startswith("/api/v1/"):
        rule = policy_of(handler)
        operation["security"] = ([{}] if rule.optional else []) + [
            {"bearer": []}, {"apiKey": []}]
        if rule.scope:
            operation["x-required-scope"] = rule.scope
        if rule.guild_admin:
            operation["x-guild-admin"] = True
    elif path.startswith("/webhooks/"):
        operation["security"] = [{"webhookSignature": []}]
    elif path in ("/metrics", "/api/observability", "/api/observability/history"):
        operation["security"] = [{"apiKey": []}]
        operation["x-required-scope"] = "observability:read"
    return operation


def build_document(app: web.Application) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        if route.method == "HEAD":
            continue  # implied by GET
        path = _PARAMETER.sub(lambda m: "{" + m.group(1) + "}", route.resource.canonical
                              if route.resource else "")
        paths.setdefault(path, {})[route.method.lower()] = _operation(route.method, path,
                                                                      route.handler)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Community bot control API", "version": "1"},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "webhookSignature": {"type": "apiKey", "in": "header",
                                     "name": "webhook-signature"},
            },
        },
    }


async def openapi_document(request: web.Request) -> web.Response:
    """This document: every route of the API (OpenAPI 3.1)."""
    return web.json_response(build_document(request.app))
