"""The OpenAPI document of the server API, built from the same pydantic models the routes use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from classroom.tenant_api import models as m

ROUTES: list[tuple[str, str, str, type[BaseModel] | None, type[BaseModel], int]] = [
    # (method, path, summary, request body, response, success status)
    ("put", "/api/v1/sessions/{sid}", "Set a session's roster", m.Roster, m.SessionInfo, 200),
    ("get", "/api/v1/sessions/{sid}", "A session's status and roster", None, m.SessionInfo, 200),
    ("post", "/api/v1/sessions/{sid}/events", "Publish an event as the server",
     m.ServerEvent, m.Published, 200),
    ("post", "/api/v1/sessions/{sid}/end", "End a session", None, m.Ended, 200),
    ("get", "/api/v1/sessions/{sid}/presence", "Who is online, with full data",
     None, m.PresenceList, 200),
    ("get", "/api/v1/sessions/{sid}/progress", "Cohort progress of every rostered student",
     None, m.CohortProgress, 200),
    ("get", "/api/v1/sessions/{sid}/attendance",
     "The attendance register (JSON, or CSV with Accept: text/csv)",
     None, m.AttendanceRegister, 200),
    ("get", "/api/v1/users/{sub}/export", "Every datum held on a user (right of access)",
     None, m.Export, 200),
    ("delete", "/api/v1/users/{sub}", "Erase a user (right to erasure)", None, m.Erased, 200),
    ("post", "/api/v1/users/{sub}/disconnect", "Close a user's connections",
     None, m.Disconnected, 200),
    ("get", "/api/v1/audit", "The tenant's audit log of personal-data access",
     None, m.AuditLog, 200),
    ("get", "/api/v1/mail/dead-letters", "The tenant's e-mail given up on (dead letters)",
     None, m.DeadLetters, 200),
    ("post", "/api/v1/mail/dead-letters/{id}/retry", "Put a dead letter back in the outbox",
     None, m.MailRetried, 200),
    ("get", "/api/v1/webhooks/dead-letters",
     "The tenant's webhook deliveries given up on (dead letters)",
     None, m.WebhookDeadLetters, 200),
    ("post", "/api/v1/webhooks/dead-letters/{id}/retry",
     "Put a dead webhook delivery back in the outbox (same webhook-id)",
     None, m.WebhookRetried, 200),
]

ERRORS = {
    "400": "Bad request: the body or an event was refused",
    "401": "Missing or unknown API key",
    "403": "Not allowed (for example: the session has ended)",
    "404": "No such session or user in this tenant",
    "422": "The body does not match the schema",
    "429": "Too many failed API keys from this address; see Retry-After",
    "503": "Storage or broker unreachable; retry later",
}


def build_openapi() -> dict[str, Any]:
    """The whole document; ``/openapi.json`` serves it."""
    models = {model for _, _, _, body, answer, _ in ROUTES for model in (body, answer) if model}
    models.add(m.Problem)
    _, schemas = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda x: x.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, body, answer, status in ROUTES:
        operation: dict[str, Any] = {
            "summary": summary,
            "parameters": _parameters(path),
            "responses": {
                str(status): _json_response(answer, "OK"),
                **{code: _json_response(m.Problem, text) for code, text in ERRORS.items()},
            },
        }
        if path.endswith("/attendance"):
            operation["responses"][str(status)]["content"]["text/csv"] = {
                "schema": {"type": "string"}
            }
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(body)}},
            }
        paths.setdefault(path, {})[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "classroom server API", "version": "1",
                 "description": "For tenants' back ends; authenticate with the tenant API key."},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"tenantKey": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"tenantKey": []}],
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _parameters(path: str) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name in ("sid", "sub", "id"):
        if "{" + name + "}" in path:
            params.append({"name": name, "in": "path", "required": True,
                           "schema": {"type": "string"}})
    if path in ("/api/v1/audit", "/api/v1/mail/dead-letters", "/api/v1/webhooks/dead-letters"):
        params.append({"name": "limit", "in": "query", "required": False,
                       "schema": {"type": "integer", "minimum": 1, "maximum": 10000}})
    return params
