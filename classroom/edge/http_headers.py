"""Security headers on every HTTP answer: the server API, its documents, health, metrics.

The web client's pages and files carry their own, richer set (``web_pages.py``); this
wrapper only adds a header an answer does not have yet, so theirs are kept. The defaults
suit answers that are data, never documents: nothing may be loaded, framed, sniffed or
cached from them. ``Strict-Transport-Security`` is added to every answer when the node is
served behind TLS (``CLASSROOM_HSTS_SECONDS`` > 0).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DATA_SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Exports and rosters hold personal data: no shared or browser cache keeps them.
    "Cache-Control": "no-store",
}


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()]


class DefaultSecurityHeaders:
    """ASGI wrapper: :data:`DATA_SECURITY_HEADERS` where missing, and HSTS when configured."""

    def __init__(self, app: ASGIApp, hsts_seconds: int = 0) -> None:
        self._app = app
        self._defaults = _encoded(DATA_SECURITY_HEADERS)
        self._forced = _encoded(
            {"Strict-Transport-Security": f"max-age={hsts_seconds}"} if hsts_seconds > 0 else {}
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                forced = {name for name, _ in self._forced}
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in forced]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self._defaults if k not in present]
                message = {**message, "headers": headers + self._forced}
            await send(message)

        await self._app(scope, receive, send_with_headers)
