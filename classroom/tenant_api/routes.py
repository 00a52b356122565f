"""Server API routes: authenticate the tenant, call the back office, answer JSON."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from auth.tenants import Tenant, TenantRegistry
from classroom.backends.data.records import Records
from classroom.backends.data.store import DataUnavailable
from classroom.domain.addresses import address_key
from classroom.domain.channel import is_session_id
from classroom.domain.refusals import RequestRefused
from classroom.domain.screens import origin_refusal
from classroom.protocol.commands import describe
from classroom.sessions.backend_calls import UNREACHABLE
from classroom.tenant_api import models as m
from classroom.tenant_api.attendance_csv import register_csv, wants_csv
from classroom.tenant_api.backoffice import Backoffice, NotFound
from classroom.tenant_api.key_throttle import KeyThrottle
from classroom.tenant_api.openapi import build_openapi
from classroom.tenant_api.privacy_rights import PrivacyRights

STATUS_OF = {"bad_request": 400, "unauthorized": 401, "forbidden": 403, "not_found": 404,
             "rate_limited": 429, "unavailable": 503}
MAX_BODY = 4 * 1024 * 1024

Handler = Callable[[Request, Tenant], Awaitable[Any]]


class Unprocessable(Exception):  # noqa: N818 - reads as the HTTP answer it becomes
    """A body that matches the schema but breaks a rule of the tenant: 422 ``invalid``."""


def problem(status: int, error: str, message: str) -> JSONResponse:
    """An error answer; messages never hold personal data."""
    return JSONResponse({"error": error, "message": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, or ``bad_request`` "body too large" as soon as it passes ``limit``.

    A ``Content-Length`` over the limit is refused before a byte of the body is read;
    without one (chunked) the body is counted as it streams in, and reading stops at
    the first chunk past the limit. uvicorn discards what the client still sends.
    """
    try:
        declared = int(request.headers.get("content-length", ""))
    except ValueError:  # absent (chunked) or not a number: the count below decides
        declared = 0
    if declared > limit:
        raise RequestRefused("bad_request", "body too large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestRefused("bad_request", "body too large")
    return bytes(body)


def throttled(retry_after: int) -> JSONResponse:
    """429 for an address that sent too many bad keys: every request, until the window ends."""
    answer = problem(429, "rate_limited", "too many failed API keys from this address; retry later")
    answer.headers["Retry-After"] = str(retry_after)
    return answer


@dataclass(eq=False)
class ServerApi:
    """The ``/api/v1`` routes of one app."""

    tenants: TenantRegistry
    backoffice: Backoffice
    rights: PrivacyRights
    records: Records
    throttle: KeyThrottle = field(default_factory=KeyThrottle)
    _openapi: dict[str, Any] = field(default_factory=build_openapi, init=False)

    def routes(self) -> list[BaseRoute]:
        """Every route, plus ``/openapi.json``."""
        r = self._wrap
        return [
            Route("/openapi.json", self._serve_openapi),
            Route("/api/v1/sessions/{sid}", r(self._put_roster), methods=["PUT"]),
            Route("/api/v1/sessions/{sid}", r(self._get_session, audit=(
                "read roster", "/api/v1/sessions/{sid}")), methods=["GET"]),
            Route("/api/v1/sessions/{sid}/events", r(self._publish), methods=["POST"]),
            Route("/api/v1/sessions/{sid}/end", r(self._end), methods=["POST"]),
            Route("/api/v1/sessions/{sid}/presence", r(self._presence, audit=(
                "read presence", "/api/v1/sessions/{sid}/presence")), methods=["GET"]),
            Route("/api/v1/sessions/{sid}/progress", r(self._progress, audit=(
                "read progress", "/api/v1/sessions/{sid}/progress")), methods=["GET"]),
            Route("/api/v1/sessions/{sid}/attendance", r(self._attendance, audit=(
                "read attendance", "/api/v1/sessions/{sid}/attendance")), methods=["GET"]),
            Route("/api/v1/users/{sub}/export", r(self._export, audit=(
                "export user", "/api/v1/users/{sub}/export")), methods=["GET"]),
            Route("/api/v1/users/{sub}", r(self._erase, audit=(
                "erase user", "/api/v1/users/{sub}")), methods=["DELETE"]),
            Route("/api/v1/users/{sub}/disconnect", r(self._disconnect), methods=["POST"]),
            Route("/api/v1/audit", r(self._audit), methods=["GET"]),
            Route("/api/v1/mail/dead-letters", r(self._dead_letters, audit=(
                "read dead letters", "/api/v1/mail/dead-letters")), methods=["GET"]),
            Route("/api/v1/mail/dead-letters/{id}/retry", r(self._retry_mail), methods=["POST"]),
            Route("/api/v1/webhooks/dead-letters", r(self._webhook_dead_letters, audit=(
                "read webhook dead letters", "/api/v1/webhooks/dead-letters")), methods=["GET"]),
            Route("/api/v1/webhooks/dead-letters/{id}/retry", r(self._retry_webhook),
                  methods=["POST"]),
        ]

    async def _serve_openapi(self, request: Request) -> Response:
        return JSONResponse(self._openapi)

    def _tenant(self, request: Request) -> Tenant | None:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if not hmac.compare_digest(scheme.lower().encode(), b"bearer") or not key.strip():
            return None
        return self.tenants.by_api_key(key.strip())

    def _wrap(self, handler: Handler, audit: tuple[str, str] | None = None) -> Callable[
        [Request], Awaitable[Response]
    ]:
        async def endpoint(request: Request) -> Response:
            address = address_key(request.client.host if request.client else None)
            wait = self.throttle.retry_after(address)
            if wait is not None:
                return throttled(wait)
            tenant = self._tenant(request)
            if tenant is None:
                self.throttle.failed(address)
                return problem(401, "unauthorized", "missing or unknown API key")
            sid = request.path_params.get("sid")
            if sid is not None and not is_session_id(sid):
                return problem(404, "not_found", "no such session")
            response = await self._answer(handler, request, tenant)
            if audit is not None:
                sub = request.path_params.get("sub")
                action, template = audit
                with contextlib.suppress(DataUnavailable):
                    await self.records.audit(tenant.id, {
                        "action": action, "route": template,
                        "subject": self.records.subject(tenant.id, sub) if sub else None,
                        "session": sid, "status": response.status_code,
                    })
            return response

        return endpoint

    async def _answer(self, handler: Handler, request: Request, tenant: Tenant) -> Response:
        try:
            result = await handler(request, tenant)
        except NotFound as exc:
            return problem(404, "not_found", str(exc))
        except RequestRefused as exc:
            return problem(STATUS_OF.get(exc.code, 400), exc.code, exc.message)
        except ValidationError as exc:
            return problem(422, "invalid", describe(exc, skip=0))
        except Unprocessable as exc:
            return problem(422, "invalid", str(exc))
        except UNREACHABLE:
            return problem(503, "unavailable", "storage is unreachable; retry later")
        if isinstance(result, Response):
            return result
        body = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
        return JSONResponse(body)

    @staticmethod
    async def _body(request: Request, model: type[m.Roster] | type[m.ServerEvent]) -> Any:
        return model.model_validate_json(await read_body(request, MAX_BODY) or b"{}")

    async def _put_roster(self, request: Request, tenant: Tenant) -> Any:
        roster = await self._body(request, m.Roster)
        refusal = origin_refusal(roster.model_dump(mode="json")["screens"], tenant.frame_origins)
        if refusal is not None:
            raise Unprocessable(refusal)
        body = await self.backoffice.set_roster(
            tenant, request.path_params["sid"], roster.model_dump(mode="json", exclude_none=True)
        )
        return m.SessionInfo.model_validate(body)

    async def _get_session(self, request: Request, tenant: Tenant) -> Any:
        return m.SessionInfo.model_validate(
            await self.backoffice.session(tenant, request.path_params["sid"])
        )

    async def _publish(self, request: Request, tenant: Tenant) -> Any:
        body = await self._body(request, m.ServerEvent)
        return m.Published.model_validate(await self.backoffice.publish(
            tenant, request.path_params["sid"], dict(body.event), body.client_msg_id
        ))

    async def _end(self, request: Request, tenant: Tenant) -> Any:
        ended = await self.backoffice.end(tenant, request.path_params["sid"])
        return m.Ended.model_validate(ended)

    async def _presence(self, request: Request, tenant: Tenant) -> Any:
        sid = request.path_params["sid"]
        participants = await self.backoffice.presence(tenant, sid)
        return m.PresenceList.model_validate({"session": sid, "participants": participants})

    async def _progress(self, request: Request, tenant: Tenant) -> Any:
        return m.CohortProgress.model_validate(
            await self.backoffice.cohort(tenant, request.path_params["sid"])
        )

    async def _attendance(self, request: Request, tenant: Tenant) -> Any:
        register = m.AttendanceRegister.model_validate(
            await self.backoffice.attendance(tenant, request.path_params["sid"])
        )
        if wants_csv(request.headers.get("accept", "")):
            return Response(register_csv(register), media_type="text/csv; charset=utf-8")
        return register.model_dump(mode="json", by_alias=True)

    async def _export(self, request: Request, tenant: Tenant) -> Any:
        return m.Export.model_validate(
            await self.rights.export(tenant, request.path_params["sub"])
        )

    async def _erase(self, request: Request, tenant: Tenant) -> Any:
        return m.Erased.model_validate(
            await self.rights.erase(tenant, request.path_params["sub"])
        )

    async def _disconnect(self, request: Request, tenant: Tenant) -> Any:
        sub = request.path_params["sub"]
        await self.backoffice.disconnect(tenant, sub)
        return m.Disconnected(sub=sub, disconnected=True)

    async def _audit(self, request: Request, tenant: Tenant) -> Any:
        entries = await self.records.audit_log(tenant.id, _limit(request))
        return m.AuditLog.model_validate({"entries": entries})

    async def _dead_letters(self, request: Request, tenant: Tenant) -> Any:
        return m.DeadLetters.model_validate(
            await self.backoffice.dead_letters(tenant, _limit(request))
        )

    async def _retry_mail(self, request: Request, tenant: Tenant) -> Any:
        return m.MailRetried.model_validate(
            await self.backoffice.retry_mail(tenant, request.path_params["id"])
        )

    async def _webhook_dead_letters(self, request: Request, tenant: Tenant) -> Any:
        return m.WebhookDeadLetters.model_validate(
            await self.backoffice.webhook_dead_letters(tenant, _limit(request))
        )

    async def _retry_webhook(self, request: Request, tenant: Tenant) -> Any:
        return m.WebhookRetried.model_validate(
            await self.backoffice.retry_webhook(tenant, request.path_params["id"])
        )


def _limit(request: Request) -> int:
    """The ``limit`` query parameter: default 100, clamped to 1..10000."""
    try:
        return max(1, min(10000, int(request.query_params.get("limit", "100"))))
    except ValueError:
        raise RequestRefused("bad_request", "limit must be a whole number") from None
