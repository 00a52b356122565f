"""The ASGI application: every part of one server process, wired together from one ``Settings``.

The runtime's top: it builds the backends, the session layer, the integrations,
the command handlers' services and the server API, and serves them through the
edge (the WebSocket endpoint, the pages, health, readiness and metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from auth.tenants import Tenant
from classroom.backends.broker.factory import broker_from_url
from classroom.backends.data.records import Records
from classroom.backends.data.redis import data_store_from_url
from classroom.backends.presence_factory import presence_from_url
from classroom.config import Settings
from classroom.demo import DEMO_SESSION, demo_roster
from classroom.domain.addresses import address_key
from classroom.domain.channel import Channel
from classroom.domain.lifecycle import is_ended
from classroom.edge.asyncapi_route import asyncapi_route
from classroom.edge.census import census
from classroom.edge.connection import Connection
from classroom.edge.http_headers import DefaultSecurityHeaders
from classroom.edge.ramp_freeze import RampFreeze
from classroom.edge.registry import ConnectionRegistry
from classroom.edge.revoked import close_revoked
from classroom.edge.stalls import StallWatch
from classroom.edge.web_pages import web_routes
from classroom.edge.write_batching import WriteBatcher
from classroom.handlers.services import Services
from classroom.integrations.mail import mail_from_settings
from classroom.integrations.mail.session_summaries import SummaryMailer
from classroom.integrations.video import video_from_settings
from classroom.integrations.webhooks import Webhooks, webhooks_from_settings
from classroom.metrics import Metrics
from classroom.protocol.close_codes import CLOSE_FORBIDDEN
from classroom.sessions.lifecycle import each_of
from classroom.sessions.node import Node
from classroom.sessions.snapshots import Compaction
from classroom.tenant_api import models
from classroom.tenant_api.backoffice import Backoffice
from classroom.tenant_api.key_throttle import KeyThrottle
from classroom.tenant_api.privacy_rights import PrivacyRights
from classroom.tenant_api.routes import ServerApi, throttled

log = logging.getLogger("classroom.app")


class Classroom:
    """Everything one server process runs, built from one :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        settings.check_deployment()
        self.settings = settings
        self.tenants = settings.load_tenants()
        self.metrics = Metrics()
        self.stalls = StallWatch(self.metrics.loop_lag, self.metrics.gc_pause)
        self.connections = ConnectionRegistry(
            max_per_user=settings.max_connections_per_user,
            budget_scale=settings.fanout_budget_scale,
        )
        connections = self.connections
        self.ramp_freeze = RampFreeze(
            lambda: connections.accepted,
            connects_per_collection=settings.gc_freeze_connects,
            thaw_after=settings.gc_thaw_after,
            events=self.metrics.gc_ramp_freeze,
        )
        self.writes = WriteBatcher(self.metrics.frames_written, self.metrics.publish_to_write)
        self.records = Records(
            data_store_from_url(settings.redis_url, prefix=settings.redis_prefix),
            settings.secret_bytes(),
        )
        self.node = Node(
            tenants=self.tenants,
            broker=broker_from_url(
                settings.redis_url,
                prefix=settings.redis_prefix,
                history_size=settings.history_size,
                history_ttl=settings.history_ttl,
                idempotency_ttl=settings.idempotency_ttl,
                rewrite_chunk=settings.erase_chunk,
                wait_replicas=settings.redis_wait_replicas,
                wait_timeout=settings.redis_wait_timeout,
            ),
            presence=presence_from_url(
                settings.redis_url, prefix=settings.redis_prefix, ttl=settings.presence_ttl
            ),
            secret=settings.secret_bytes(),
            history_limit_max=settings.history_limit_max,
            publish_timeout=settings.publish_timeout,
            heartbeat_interval=settings.presence_ttl / 3, presence_ttl=settings.presence_ttl,
            records=self.records,
            progress_interval=settings.progress_push_interval,
            presence_window=settings.presence_window,
            tally_window=settings.tally_window,
            idle_after=settings.idle_after,
            admission_limit=settings.admission_limit,
            admission_max_wait=settings.admission_max_wait,
            metrics=self.metrics,
            write_clock=self.writes,
            compaction=Compaction.within(
                history_size=settings.history_size, history_ttl=settings.history_ttl,
                every=settings.snapshot_every, max_age=settings.snapshot_max_age,
                idle=settings.session_idle,
            ),
        )
        self.metrics.sessions.set_function(lambda: len(self.node.hub.channels()))
        self.node.on_user_control = self._user_control
        self.node.control.on_gap = self._control_gap
        self._rechecks: set[asyncio.Task[int]] = set()
        self.mail_outbox, self.mail = mail_from_settings(
            settings, on_depth=self.metrics.mail_outbox.set,
            on_dead=self.metrics.mail_dead_letters.set,
        )
        self.webhook_sender = webhooks_from_settings(
            settings, on_depth=self.metrics.webhook_outbox.set,
            on_dead=self.metrics.webhook_dead_letters.set,
        )
        self.webhooks = Webhooks(tenants=self.tenants, sender=self.webhook_sender,
                                 progress=self._progress_table,
                                 attendance=self._attendance_register)
        self.node.attendance.on_departure = self._attendance_changed
        self.records.on_live = self.webhooks.session_started
        self.node.lifecycle.on_session_ended = each_of(
            SummaryMailer(tenants=self.tenants, records=self.records, cohorts=self.node.cohorts,
                          mail=self.mail).session_ended,
            self.webhooks.session_ended,
        )
        self.backoffice = Backoffice(self.node, mail=self.mail, webhooks=self.webhook_sender)
        self.key_throttle = KeyThrottle(limit=settings.api_key_failure_limit,
                                        window=settings.api_key_failure_window)
        rights = PrivacyRights(self.node, self.mail, webhooks=self.webhooks,
                               page_size=settings.erase_chunk)
        self.api = ServerApi(self.tenants, self.backoffice, rights, self.records,
                             throttle=self.key_throttle)
        self.video = video_from_settings(settings, token_ttl=settings.video_token_ttl)
        self.services = Services(
            node=self.node, video=self.video,
            token_leeway=settings.token_leeway, ping_interval=settings.ping_interval,
            history_limit_max=settings.history_limit_max, refresh_before=settings.refresh_before,
        )

    async def _progress_table(self, tenant: Tenant, session: str) -> dict[str, Any]:
        """The progress table exactly as ``GET /api/v1/sessions/{sid}/progress`` answers it."""
        table = await self.node.cohorts.table(tenant, session)
        return models.CohortProgress.model_validate(table).model_dump(mode="json")

    async def _attendance_register(self, tenant: str, session: str) -> dict[str, Any]:
        """The register exactly as ``GET /api/v1/sessions/{sid}/attendance`` answers it."""
        register = await self.node.attendance.register(tenant, session)
        return models.AttendanceRegister.model_validate(register).model_dump(
            mode="json", by_alias=True)

    async def _attendance_changed(self, tenant: str, session: str, sub: str) -> None:
        """A live session's participant left: their updated line, to the back end."""
        if not self.webhooks.wanted(tenant):
            return
        ending = self.node.streams.ended(Channel(tenant, session).name)
        if ending or is_ended(await self.records.status(tenant, session)):
            return  # session.ended carries the whole register
        line = await self.node.attendance.line_of(tenant, session, sub)
        shown = models.AttendanceLine.model_validate(line).model_dump(mode="json", by_alias=True)
        await self.webhooks.attendance_updated(tenant, session, {"participants": [shown]})

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one WebSocket connection at ``/ws``."""
        connection = Connection(
            scope, receive, send,
            services=self.services, settings=self.settings, metrics=self.metrics,
            registry=self.connections, writes=self.writes,
        )
        await connection.run()

    async def seed_demo(self) -> None:
        """Give the demo session a roster, so the dashboard has rows from the start."""
        tenant = self.tenants.get("demo")
        if tenant is not None:
            await self.backoffice.set_roster(tenant, DEMO_SESSION, demo_roster())

    def _user_control(self, message: dict[str, Any]) -> None:
        """Close a user's connections on this node: 4403, and no reconnecting."""
        if message.get("t") not in ("disconnect", "erase"):
            return
        reason = str(message.get("reason", "disconnected by the server"))
        for connection in self.connections.of_user(str(message["tenant"]), str(message["sub"])):
            connection.disconnect(CLOSE_FORBIDDEN, reason, reconnect=False)

    def _control_gap(self) -> None:
        """Commands may be lost for good: close connections an erasure revoked, all the same."""
        task = asyncio.create_task(close_revoked(self.connections, self.records))
        self._rechecks.add(task)
        task.add_done_callback(self._recheck_done)

    def _recheck_done(self, task: asyncio.Task[int]) -> None:
        self._rechecks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("re-checking connections after a control gap failed")

    async def drain(self) -> None:
        """Send every client ``disconnect`` 1012 and wait (bounded) until they are gone."""
        self.connections.drain("server is restarting")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.drain_timeout
        while len(self.connections) and loop.time() < deadline:
            await asyncio.sleep(0.02)


class _WebSocketApp:
    """Raw ASGI endpoint: the connection speaks ASGI messages directly, no wrapper."""

    def __init__(self, classroom: Classroom) -> None:
        self._classroom = classroom

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._classroom.websocket(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; ``app.state.classroom`` holds the running parts."""
    classroom = Classroom(settings or Settings())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready = await classroom.node.broker.ready()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        refusal = _metrics_refusal(classroom, request)
        if refusal is not None:
            return refusal
        return PlainTextResponse(classroom.metrics.render(), media_type=Metrics.content_type)

    async def debug_census(request: Request) -> Response:
        refusal = _metrics_refusal(classroom, request)
        if refusal is not None:
            return refusal
        return JSONResponse(census(classroom, collect=request.query_params.get("collect") == "1"))

    debug_routes = [Route("/debug/census", debug_census)] if classroom.settings.debug_census else []

    if classroom.settings.metrics_token is None and not classroom.settings.is_demo:
        log.info("/metrics is off: set CLASSROOM_METRICS_TOKEN to scrape it")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        classroom.stalls.start()
        classroom.ramp_freeze.start()
        await classroom.node.start()
        classroom.mail.start()
        classroom.webhook_sender.start()
        if classroom.settings.is_demo:
            await classroom.seed_demo()
        try:
            yield
        finally:
            await classroom.mail.stop()
            await classroom.mail_outbox.close()
            await classroom.webhook_sender.stop()
            await classroom.webhook_sender.outbox.close()
            await classroom.node.close()
            await classroom.video.close()
            await classroom.stalls.stop()
            await classroom.ramp_freeze.stop()

    app = Starlette(
        routes=[
            WebSocketRoute("/ws", _WebSocketApp(classroom)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *debug_routes,
            *classroom.api.routes(),
            asyncapi_route(),
            *web_routes(Path(classroom.settings.static_dir)
                        if classroom.settings.static_dir else None,
                        tenants=classroom.tenants),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(DefaultSecurityHeaders, hsts_seconds=classroom.settings.hsts_seconds),
        ],
    )
    app.state.classroom = classroom
    return app


def _metrics_refusal(classroom: Classroom, request: Request) -> Response | None:
    """Why ``/metrics`` is not served to this request, or None to serve it.

    With ``CLASSROOM_METRICS_TOKEN`` set, the request must bear it (failures count
    against the address like bad API keys). Without it, only the demo tenant's node
    (no ``CLASSROOM_TENANTS``) serves metrics openly; any other answers 404.
    """
    token = classroom.settings.metrics_token
    if token is None:
        if classroom.settings.is_demo:
            return None
        return PlainTextResponse("Not Found", status_code=404)
    address = address_key(request.client.host if request.client else None)
    wait = classroom.key_throttle.retry_after(address)
    if wait is not None:
        return throttled(wait)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
    presented = hashlib.sha256(given.strip().encode("utf-8", "surrogatepass")).digest()
    if scheme.lower() == "bearer" and hmac.compare_digest(presented, expected):
        return None
    classroom.key_throttle.failed(address)
    return PlainTextResponse("unauthorized", status_code=401,
                             headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
