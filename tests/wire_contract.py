"""The AsyncAPI document as a check on the wire: every frame the test client sends or receives.

``tests/client.py`` hands each frame it sends (as the server decodes it) and each
frame it receives (JSON or MessagePack, decoded) to :data:`LEDGER` and raises at
the first problem; the root conftest fails the running test if the ledger holds a
problem all the same (an error caught by the test, a frame of the handler tests'
recording peer, or of a browser test, see :func:`tap_server`), naming the frame
type. The rules:

- a received frame must match its message in ``/asyncapi.json`` (chosen by its
  ``type``, and for an ``event`` push by the event's ``kind``);
- a sent frame the document rejects must be refused by the server (an ``error``
  reply to its id): the document is not stricter than the server;
- a sent frame the document accepts must not be refused as malformed (an
  ``error`` ``bad_request`` whose message is a validation failure): the document
  is not looser than the server's own validation.

Integers are checked strictly (``1.0`` and ``true`` are not integers) and numbers
must be finite, as docs/protocol.md says of every frame. ``jsonschema_rs`` (already
pinned for Schemathesis) lets the common frame pass fast; ``jsonschema`` decides
every other and words the problem, so the check costs the timing-sensitive wire
tests next to nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from classroom.protocol.asyncapi import build_asyncapi

BASE = "urn:classroom:asyncapi"
MALFORMED = re.compile(
    r"^(unknown command type|unknown event kind|event must be an object"
    r"|event has a field this kind does not take|event field '\w+' .*|[\w.]+: .*)$"
)
"""``bad_request`` messages that mean "this frame does not match the schema"."""


def _is_integer(checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(checker: Any, value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


@cache
def _ecma(pattern: str) -> re.Pattern[str]:
    """``pattern`` as ECMA-262 reads it: a final ``$`` is the end, not "before a last newline"."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


StrictValidator = validators.extend(
    Draft202012Validator,
    validators={"pattern": _pattern},
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine_many(
        {"integer": _is_integer, "number": _is_number}),
)
"""JSON Schema as the wire means it: no float or boolean integers, finite numbers, and
patterns anchored as JSON Schema (and pydantic) anchor them: ``"s1\\n"`` is no session id."""


def usable_id(frame: dict[str, Any]) -> int | None:
    """The frame's ``id`` when the server would echo it (``command_id_of``)."""
    value = frame.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return value
    return None


class Contract:
    """Validators for every message of the document, found by a frame's type and kind."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        registry: Registry[Any] = Registry().with_resource(
            BASE, Resource.from_contents(document, default_specification=DRAFT202012))
        schemas = document["components"]["schemas"]
        self.validators: dict[str, Any] = {}
        self.fast: dict[str, Any] = {}
        self.type_of: dict[str, str] = {}
        self.kind_of: dict[str, str | None] = {}
        for name, message in document["components"]["messages"].items():
            self.validators[name] = StrictValidator(
                {"$ref": f"{BASE}#/components/messages/{name}/payload"}, registry=registry)
            self.fast[name] = jsonschema_rs.Draft202012Validator(
                {**document, "$ref": f"#/components/messages/{name}/payload"})
            schema = schemas[message["payload"]["$ref"].rsplit("/", 1)[1]]
            self.type_of[name] = schema["properties"]["type"]["const"]
            event = schema["properties"].get("event", {}).get("$ref")
            if event is not None:
                self.kind_of[name] = (schemas[event.rsplit("/", 1)[1]]["properties"]["kind"]
                                      .get("const"))
        operations = document["operations"].values()
        self.inbound = {_name(ref) for op in operations if op["action"] == "receive"
                        for ref in op["messages"]}
        self.outbound = {_name(ref) for op in operations
                         for ref in (op["messages"] if op["action"] == "send"
                                     else op["reply"]["messages"])}

    def candidates(self, frame: dict[str, Any], *, sent: bool) -> list[str]:
        """The messages a frame may be: by ``type`` and direction, by kind for an event."""
        names = [n for n in sorted(self.inbound if sent else self.outbound)
                 if self.type_of[n] == frame.get("type")]
        event = frame.get("event")
        if not sent and frame.get("type") == "event" and isinstance(event, dict):
            if event.get("erased") is True:
                return ["event.erased"]
            return [n for n in names if self.kind_of.get(n) == event.get("kind")]
        return names

    def problem(self, frame: Any, *, sent: bool) -> tuple[str, str | None]:
        """``(message name, None)`` for a frame that matches, else ``(name, what is wrong)``."""
        if not isinstance(frame, dict):
            return "?", "a frame must be an object"
        names = self.candidates(frame, sent=sent)
        if not names:
            return f"unknown:{frame.get('type')!r}", "no message of the document has this type"
        fast = _plain(frame)
        for name in names:
            with contextlib.suppress(ValueError):  # bytes, or keys that are not strings
                if fast and self.fast[name].is_valid(frame):
                    return name, None
        errors = []
        for name in names:
            error = best_match(self.validators[name].iter_errors(frame))
            if error is None:
                return name, None
            where = "/".join(str(p) for p in error.absolute_path) or "(frame)"
            errors.append(f"{where}: {error.message[:200]}")
        return names[0], "; ".join(errors)


def _plain(frame: Any) -> bool:
    """Whether the fast validator reads ``frame`` as the strict one does: no float in it is
    whole (``1.0`` passes JSON Schema's ``integer``) or not finite."""
    stack = [frame]
    while stack:
        value = stack.pop()
        if isinstance(value, float):
            if value.is_integer() or not math.isfinite(value):
                return False
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _name(ref: dict[str, str]) -> str:
    return ref["$ref"].rsplit("/", 1)[1]


@cache
def contract() -> Contract:
    """The document of this code, with its validators: built once per test run."""
    return Contract(build_asyncapi())


class Ledger:
    """What the test client saw: problems for the running test, message counts for the run."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.seen: Counter[str] = Counter()
        self.frames = 0

    def take(self) -> list[str]:
        problems, self.problems = self.problems, []
        return problems

    def sent(self, frame: dict[str, Any], pending: dict[int, tuple[str, str | None]]) -> None:
        """Check a frame the client sent; remember the verdict under its id for the reply."""
        name, problem = contract().problem(frame, sent=True)
        self.frames += 1
        if problem is None:
            self.seen[name] += 1
        command_id = usable_id(frame)
        if command_id is not None:
            pending[command_id] = (str(frame.get("type")), problem)

    def from_real_client(self, frame: dict[str, Any]) -> None:
        """Check a frame a real client (the browser's ``classroom.js``) sent: it must match."""
        name, problem = contract().problem(frame, sent=True)
        self.frames += 1
        if problem is None:
            self.seen[name] += 1
        else:
            self.problems.append(f"a client sent a {frame.get('type')!r} frame that "
                                 f"/asyncapi.json rejects: {problem}")

    def received(self, frame: Any, encoding: str,
                 pending: dict[int, tuple[str, str | None]]) -> None:
        """Check a frame the client received, and the server's verdict on the command it answers."""
        name, problem = contract().problem(frame, sent=False)
        self.frames += 1
        kind = frame.get("type") if isinstance(frame, dict) else None
        if problem is not None:
            self.problems.append(f"received {kind!r} frame ({encoding}) does not match "
                                 f"message {name!r} of /asyncapi.json: {problem}")
            return
        self.seen[name] += 1
        command_id = usable_id(frame)
        if command_id is None or command_id not in pending:
            return
        command, verdict = pending.pop(command_id)
        if verdict is not None and kind != "error":
            self.problems.append(f"the server accepted a {command!r} command ({encoding}) that "
                                 f"/asyncapi.json rejects: {verdict}")
        elif (verdict is None and kind == "error" and frame.get("code") == "bad_request"
              and MALFORMED.match(str(frame.get("message")))):
            self.problems.append(f"/asyncapi.json accepts a {command!r} command ({encoding}) "
                                 f"that the server refused as malformed: {frame['message']}")


LEDGER = Ledger()
"""The one ledger of this test run (the client feeds it, the root conftest reads it)."""

SERVER_CODEC = ("classroom.edge.connection", "classroom.sessions.joining", "classroom.sessions.hub")
"""The modules of the server that encode frames (and, the connection, decode them)."""


def tap_server(monkeypatch: Any) -> None:
    """Check every frame a server in this process decodes and encodes (browser tests).

    The browser's client is not ``tests/client.py``: its frames are checked where the
    server decodes a command and encodes a reply or push.
    """
    for name in SERVER_CODEC:
        module = importlib.import_module(name)
        monkeypatch.setattr(module, "encode", _encoding_tap(module.encode))
        if hasattr(module, "decode"):
            monkeypatch.setattr(module, "decode", _decoding_tap(module.decode))


def _encoding_tap(encode: Callable[..., Any]) -> Callable[..., Any]:
    def tapped(frame: dict[str, Any], encoding: Any) -> Any:
        LEDGER.received(frame, str(encoding), {})
        return encode(frame, encoding)
    return tapped


def _decoding_tap(decode: Callable[..., Any]) -> Callable[..., Any]:
    def tapped(data: Any, encoding: Any) -> Any:
        frame = decode(data, encoding)
        LEDGER.from_real_client(frame)
        return frame
    return tapped
