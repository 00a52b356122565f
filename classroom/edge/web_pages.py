"""The web client: the student, trainer and dashboard pages and their static files.

The pages are plain HTML with ES modules from ``static/`` (no build step). They
carry no token in any URL the server sees: demo links put the connection token
in the URL *fragment* (``#token=...``), which browsers never send.

Every answer carries a strict Content-Security-Policy: scripts, styles and
WebSocket connections only from this origin, plus OpenTok (Vonage Video) for
the video panel: its client library from OpenTok's static host, and its
signalling and API hosts for ``connect-src`` (the library cannot work without
them). No inline scripts or styles are allowed, so the pages have none.

The lesson pages (``/student``, ``/trainer``, ``/dashboard``) may show a screen's
page in a frame: their policy adds ``frame-src`` with the origins of the tenant
named by the ``tenant`` query parameter (its ``frame_origins``), and
``frame-src 'none'`` for a missing or unknown tenant. The tenant id is not a
secret (it is every token's ``iss``); the query carries no token.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.tenants import TenantRegistry

log = logging.getLogger("classroom.edge.web_pages")

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
"""``static/`` at the repository root (``make`` installs the package editable)."""

PAGES: dict[str, str] = {
    "/": "index.html",
    "/student": "student.html",
    "/trainer": "trainer.html",
    "/dashboard": "dashboard.html",
}
LESSON_PAGES = frozenset({"/student", "/trainer", "/dashboard"})
"""The pages that show a lesson's screens, and so may frame the tenant's pages."""

OPENTOK_STATIC = "https://static.opentok.com"
"""Where OpenTok's web client (``/v2/js/opentok.min.js``) is loaded from, only for video."""

OPENTOK_CONNECT = (
    "https://*.opentok.com",
    "wss://*.opentok.com",
    "https://*.tokbox.com",
    "wss://*.tokbox.com",
)
"""OpenTok's API and signalling hosts (Vonage publishes no fixed list, only these domains)."""

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    f"script-src 'self' {OPENTOK_STATIC}",
    f"style-src 'self' {OPENTOK_STATIC}",
    f"img-src 'self' data: blob: {OPENTOK_STATIC}",
    "font-src 'self'",
    # 'self' covers ws:// and wss:// to this origin (CSP level 3), i.e. /ws.
    "connect-src 'self' " + " ".join(OPENTOK_CONNECT),
    "media-src 'self' blob: mediastream:",
    "worker-src 'self' blob:",
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "object-src 'none'",
])

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The query carries the session id: do not hand it to other sites.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(self), microphone=(self), geolocation=(), payment=()",
    # Revalidate (ETag / Last-Modified) on every load, so a deploy is seen at once.
    "Cache-Control": "no-cache",
}


def frame_sources(tenants: TenantRegistry | None, query_string: bytes) -> str:
    """The ``frame-src`` directive for a lesson page opened with ``query_string``.

    The origins were checked when the tenants were loaded (``auth.urls``): only
    scheme, host and port, so nothing in them can end the directive early.
    """
    try:
        query = parse_qs(query_string.decode("latin-1"), max_num_fields=20)
    except ValueError:  # more fields than anyone sends: no tenant
        query = {}
    named = query.get("tenant", [""])[0]
    tenant = tenants.get(named) if tenants is not None and named else None
    if tenant is None or not tenant.frame_origins:
        return "frame-src 'none'"
    return "frame-src " + " ".join(tenant.frame_origins)


class SecurityHeaders:
    """ASGI wrapper adding :data:`SECURITY_HEADERS` to every HTTP answer of ``app``.

    Its errors too: ``StaticFiles`` answers a missing file (404), a method other than
    GET and HEAD (405) and an unreadable one (401) by raising ``HTTPException``, which
    Starlette would render outside this wrapper, without these headers. The wrapper
    renders such an exception itself, as Starlette's default handler would.

    With ``frames``, the answer is a lesson page's: its policy gains the ``frame-src``
    of the tenant of ``tenants`` its query names (:func:`frame_sources`).
    """

    def __init__(self, app: ASGIApp, *, frames: bool = False,
                 tenants: TenantRegistry | None = None) -> None:
        self._app = app
        self._frames = frames
        self._tenants = tenants
        self._headers = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in SECURITY_HEADERS.items()
        ]

    def _headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        if not self._frames:
            return self._headers
        frames = frame_sources(self._tenants, scope.get("query_string", b""))
        policy = f"{CONTENT_SECURITY_POLICY}; {frames}"
        return [(name, policy.encode("latin-1") if name == b"content-security-policy" else value)
                for name, value in self._headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        started = False
        headers = self._headers_for(scope)

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {name for name, _ in headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": kept + headers}
            await send(message)

        try:
            await self._app(scope, receive, send_with_headers)
        except HTTPException as exc:
            if started:  # too late to answer: let Starlette deal with it as before
                raise
            await _error_response(exc)(scope, receive, send_with_headers)


def _error_response(exc: HTTPException) -> Response:
    """What Starlette's default handler answers for ``exc``: its detail as plain text."""
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def web_routes(
    static_dir: Path | None = None, tenants: TenantRegistry | None = None
) -> list[BaseRoute]:
    """Routes for the pages (``/``, ``/student``, ``/trainer``, ``/dashboard``) and ``/static``.

    ``tenants`` gives the lesson pages their ``frame-src``; without it they frame nothing.

    When ``static/`` is missing (the package was installed without the
    repository around it) there is nothing to serve: the WebSocket server and
    its API work as before, and a warning says why the pages are absent.
    """
    directory = STATIC_DIR if static_dir is None else static_dir
    if not directory.is_dir():
        log.warning("web client not served: no static directory",
                    extra={"path": str(directory)})
        return []
    routes: list[BaseRoute] = [
        Route(path, SecurityHeaders(_PageApp(directory / filename),
                                    frames=path in LESSON_PAGES, tenants=tenants),
              name=f"page-{filename}")
        for path, filename in PAGES.items()
    ]
    # The npm package's sources, beside static/: static/classroom.js re-exports them.
    client_dir = directory.parent / "clients" / "js" / "src"
    if client_dir.is_dir():
        routes.append(Mount(
            "/static/client",
            app=SecurityHeaders(StaticFiles(directory=client_dir)),
            name="static-client",
        ))
    routes.append(Mount(
        "/static",
        app=SecurityHeaders(StaticFiles(directory=directory)),
        name="static",
    ))
    return routes


class _PageApp:
    """One HTML page as a raw ASGI app, so :class:`SecurityHeaders` can wrap it."""

    def __init__(self, path: Path) -> None:
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            response: Response = Response("method not allowed", status_code=405,
                                          headers={"Allow": "GET, HEAD"})
        else:
            response = FileResponse(self._path, media_type="text/html; charset=utf-8")
        await response(scope, receive, send)
