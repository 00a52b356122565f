"""``GET /asyncapi.json``: the AsyncAPI 3 document of ``/ws``, next to ``/openapi.json``.

The document is built once per process from the wire's models and changes only
with the code, so it may be cached (it holds no personal data): the answer says
so and carries an ``ETag``; the security headers are added as on every answer.
"""

from __future__ import annotations

import hashlib

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from classroom.protocol.asyncapi import build_asyncapi

CACHE_CONTROL = "public, max-age=3600"


def asyncapi_route() -> Route:
    """The route, with the document encoded once."""
    body = orjson.dumps(build_asyncapi())
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": etag}

    async def serve(request: Request) -> Response:
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return Route("/asyncapi.json", serve)
