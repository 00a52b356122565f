"""The AsyncAPI 3 document of ``/ws``, built from the pydantic models of the wire.

Every command, reply and push is a message whose payload schema is generated
from a model (``commands``, ``replies``, ``pushes``, ``event_objects``,
``wire_objects``), never written by hand; ``/asyncapi.json`` serves it next to
``/openapi.json``. The document describes the server: it *receives* commands
(each operation names its reply) and *sends* pushes. The contract tests validate
every frame they send and receive against it, in JSON and MessagePack, so it
cannot drift from the server unnoticed.
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel

from classroom.protocol import commands as c
from classroom.protocol import pushes as p
from classroom.protocol import replies as r
from classroom.protocol.codec import SUBPROTOCOLS
from classroom.protocol.event_objects import PUBLISHABLE
from classroom.protocol.wire_schema import REF_TEMPLATE, wire_schemas

CONTENT_TYPES = {"json": "application/json", "msgpack": "application/vnd.msgpack"}
CHANNEL = {"$ref": "#/channels/ws"}

COMMANDS: dict[str, type[BaseModel]] = {
    str(get_args(model.model_fields["type"].annotation)[0]): model
    for model in get_args(get_args(c.Command)[0])
}
"""Each command's model, by its ``type`` (read off ``commands.Command``)."""

REPLY_NAMES: dict[str, str] = {
    "connect": "connected", "refresh": "refreshed", "join": "joined", "leave": "left",
    "publish": "published",
    "presence": "presenceReply", "history": "historyReply", "cohort": "cohortReply",
    "video": "videoReply", "ping": "pong",
}
"""The message name of each command's reply (``presence`` etc. are command names too)."""

PUSHES: dict[str, type[BaseModel]] = {
    **{f"event.{kind}": model for kind, model in p.EVENT_PUSHES.items()},
    "presence.join": p.PresenceJoin,
    "presence.leave": p.PresenceLeave,
    "presence.diff": p.PresenceDiff,
    "presence.count": p.PresenceCount,
    "progress": p.ProgressPush,
    "disconnect": p.Disconnect,
    "joined.refreshed": r.JoinedPush,
    "error": r.Error,
}
"""Every push by message name; ``error`` is also every command's refusal."""


def messages() -> dict[str, type[BaseModel]]:
    """Every message of the channel by name: commands, replies, pushes."""
    assert set(COMMANDS) == set(REPLY_NAMES) == set(r.REPLIES) == c.COMMAND_TYPES
    return {**COMMANDS, **{REPLY_NAMES[t]: r.REPLIES[t] for t in COMMANDS}, **PUSHES}


def build_asyncapi() -> dict[str, Any]:
    """The whole document; ``/asyncapi.json`` serves it."""
    models = messages()
    schemas = wire_schemas([*models.values(), *PUBLISHABLE.values()])
    schemas["Publish"]["properties"]["event"] = {
        "description": "The event to publish: its kind and that kind's payload (section 7).",
        "oneOf": [{"$ref": REF_TEMPLATE.format(model=model.__name__)}
                  for model in PUBLISHABLE.values()],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "classroom WebSocket protocol",
            "version": "1",
            "description": (
                "The live-session protocol on /ws (docs/protocol.md), as this server implements "
                "it. Generated from the server's pydantic models. The document describes the "
                "server: it receives commands, answers each with its reply or an error carrying "
                "the command's id, and sends pushes. Every frame is one object, JSON in a text "
                "frame (subprotocol classroom.v1.json, or none) or MessagePack in a binary frame "
                "(classroom.v1.msgpack), with the same schema in both encodings. Integers are "
                "never floats or booleans."),
        },
        "defaultContentType": CONTENT_TYPES["json"],
        "servers": {
            "classroom": {
                "host": "{host}", "protocol": "ws",
                "description": "A classroom node (wss behind TLS).",
                "variables": {"host": {"default": "127.0.0.1:8000",
                                       "description": "host and port of the node"}},
            },
        },
        "channels": {"ws": _channel(models)},
        "operations": _operations(),
        "components": {
            "schemas": schemas,
            "messages": {name: _message(name, model) for name, model in models.items()},
        },
        "x-encodings": {
            name: {"encoding": encoding, "contentType": CONTENT_TYPES[encoding],
                   "frames": "text" if encoding == "json" else "binary"}
            for name, encoding in SUBPROTOCOLS.items()
        },
    }


def _channel(models: dict[str, type[BaseModel]]) -> dict[str, Any]:
    return {
        "address": "/ws",
        "title": "The classroom WebSocket",
        "description": "One connection: connect first, then join sessions, publish and query.",
        "servers": [{"$ref": "#/servers/classroom"}],
        "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in models},
        "bindings": {"ws": {
            "method": "GET",
            "headers": {"type": "object", "properties": {"Sec-WebSocket-Protocol": {
                "type": "string", "enum": sorted(SUBPROTOCOLS),
                "description": "The encoding; none offered means JSON.",
            }}},
            "bindingVersion": "0.1.0",
        }},
    }


def _message(name: str, model: type[BaseModel]) -> dict[str, Any]:
    doc = (model.__doc__ or "").strip().splitlines()
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "payload": {"$ref": REF_TEMPLATE.format(model=model.__name__)},
    }
    if doc:
        message["summary"] = doc[0]
    return message


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/channels/ws/messages/{name}"}


def _operations() -> dict[str, Any]:
    operations: dict[str, Any] = {}
    for command in COMMANDS:
        operations[command] = {
            "action": "receive",
            "channel": CHANNEL,
            "summary": f"The {command} command",
            "messages": [_ref(command)],
            "reply": {"channel": CHANNEL,
                      "messages": [_ref(REPLY_NAMES[command]), _ref("error")]},
        }
    for name in PUSHES:
        operations[f"push.{name}"] = {
            "action": "send",
            "channel": CHANNEL,
            "summary": f"The {name} push",
            "messages": [_ref(name)],
        }
    return operations
