"""A reference real-time server on python-socketio, for ``python -m loadtests compare``.

It does what the load generator needs for a fair fan-out comparison, the way a
typical team would write it with python-socketio and nothing hand-tuned:

- ``connect`` with ``auth={"token": ...}``: the same HS256 connection token as our
  server (``docs/protocol.md`` section 2), checked with PyJWT against the secrets
  of the tenant named by ``iss`` (tenants from ``CLASSROOM_TENANTS``, as ours);
  a refused token refuses the connection;
- ``join`` ``{"session"}``: a session granted by the token becomes a Socket.IO
  room; the others get ``presence.join``; the ack is ``{"session", "seq"}``;
- ``publish`` ``{"session", "event"}``: the server adds ``by`` and ``at``, gives
  stored kinds (everything but ``pointer`` and ``reaction``, as ours) the room's next
  sequence number with a Redis ``INCR`` (a stand-in for our offsets), emits
  ``event`` ``{"session", "seq"?, "event"}`` to the room (the publisher included)
  and acks ``{"session", "seq"}``;
- ``disconnect``: ``presence.leave`` to the rooms the user was in.

Errors are acks of the form ``{"error": code, "message": ...}``. Everything runs
on python-socketio's defaults (``async_handlers``, standard ``json``) with
``socketio.AsyncRedisManager`` on the same Redis as our server, under its own
channel and key prefix, on uvicorn's defaults (uvloop, websockets-sansio).
"""

from __future__ import annotations

import os
import time
from typing import Any

import jwt
import redis.asyncio as aioredis
import socketio
import uvicorn

from auth.tenants import TenantRegistry, load_tenants

EPHEMERAL_KINDS = frozenset({"pointer", "reaction"})  # not stored: no sequence number
MAX_EVENT_FIELDS = 16


def verify_token(token: object, tenants: TenantRegistry) -> dict[str, Any]:
    """The token's claims, or jwt.InvalidTokenError: HS256 with the issuer's secrets."""
    if not isinstance(token, str):
        raise jwt.InvalidTokenError("no token")
    issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    tenant = tenants.get(issuer) if isinstance(issuer, str) else None
    if tenant is None:
        raise jwt.InvalidIssuerError("unknown tenant")
    for secret in tenant.secrets:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, secret, algorithms=["HS256"], issuer=tenant.id,
                options={"require": ["exp", "iss", "sub", "role", "sessions"]})
        except jwt.InvalidSignatureError:
            continue
        return claims
    raise jwt.InvalidSignatureError("no secret of the tenant signed this token")


def create_app(redis_url: str, prefix: str, tenants: TenantRegistry) -> Any:
    """The ASGI app: a python-socketio AsyncServer on ``redis_url``, keys under ``prefix``."""
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=socketio.AsyncRedisManager(redis_url, channel=f"{prefix}:socketio"),
    )
    store = aioredis.Redis.from_url(redis_url)

    def seq_key(session: str) -> str:
        return f"{prefix}:seq:{session}"

    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            claims = verify_token(token, tenants)
        except jwt.InvalidTokenError:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        await sio.save_session(sid, {
            "sub": claims["sub"], "role": claims["role"],
            "sessions": set(claims["sessions"]), "joined": set(),
        })

    async def join(sid: str, data: Any) -> dict[str, Any]:
        session = data.get("session") if isinstance(data, dict) else None
        async with sio.session(sid) as user:
            if not isinstance(session, str) or session not in user["sessions"]:
                return {"error": "forbidden", "message": "this token does not grant that session"}
            user["joined"].add(session)
        await sio.enter_room(sid, session)
        await sio.emit("presence.join", {
            "session": session, "participant": {"sub": user["sub"], "role": user["role"]},
        }, room=session, skip_sid=sid)
        seq = await store.get(seq_key(session))
        return {"session": session, "seq": int(seq or 0)}

    async def publish(sid: str, data: Any) -> dict[str, Any]:
        session = data.get("session") if isinstance(data, dict) else None
        event = data.get("event") if isinstance(data, dict) else None
        if (not isinstance(event, dict) or not isinstance(event.get("kind"), str)
                or len(event) > MAX_EVENT_FIELDS or "by" in event or "at" in event):
            return {"error": "bad_request", "message": "event must be an object with a kind"}
        user = await sio.get_session(sid)
        if not isinstance(session, str) or session not in user["joined"]:
            return {"error": "forbidden", "message": "join the session first"}
        message: dict[str, Any] = {"session": session, "event": {
            **event, "by": {"sub": user["sub"], "role": user["role"]}, "at": time.time()}}
        if event["kind"] not in EPHEMERAL_KINDS:
            message["seq"] = await store.incr(seq_key(session))
        await sio.emit("event", message, room=session)
        return {"session": session, "seq": message.get("seq")}

    async def disconnect(sid: str, reason: Any = None) -> None:
        user = await sio.get_session(sid)
        for session in user.get("joined", ()):
            await sio.emit("presence.leave", {
                "session": session, "participant": {"sub": user["sub"], "role": user["role"]},
            }, room=session, skip_sid=sid)

    async def shutdown() -> None:
        await store.aclose()

    for handler in (connect, join, publish, disconnect):
        sio.on(handler.__name__, handler)
    return socketio.ASGIApp(sio, on_shutdown=shutdown)


def serve(host: str, port: int, redis_url: str, prefix: str) -> int:
    """Run the reference server on uvicorn with one worker until SIGINT/SIGTERM."""
    raw = os.environ.get("CLASSROOM_TENANTS")
    if not raw:
        print("serve-reference: set CLASSROOM_TENANTS (as for our server)")
        return 2
    app = create_app(redis_url, prefix, load_tenants(raw))
    uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")
    return 0
