"""The AsyncAPI document of ``/ws``: well formed, complete, and able to refuse a wrong frame.

Every frame the wire tests exchange is validated against it by ``tests/wire_contract.py``;
these tests check the document itself (its AsyncAPI 3 structure, offline), that it
names every command, reply, push and event kind the code knows, that the examples
of docs/protocol.md match it, and that the check can fail.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import msgpack
import pytest
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import best_match

from auth.identity import PROFILE_FIELDS
from classroom.domain.events import ALL_KINDS
from classroom.domain.views import PERSONAL_FIELDS
from classroom.protocol.asyncapi import COMMANDS, build_asyncapi
from classroom.protocol.codec import decode, encode
from classroom.protocol.commands import COMMAND_TYPES
from classroom.protocol.wire_objects import Participant, Profile
from tests.wire_contract import Contract, Ledger, contract

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
KEY = re.compile(r"^[A-Za-z0-9.\-_]+$")
PID = "p0123456789abcdef01234"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve at {part!r}"
        node = node[part]
    return node


def test_the_document_has_the_asyncapi_3_structure(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["title"] and document["info"]["version"]
    for server in document["servers"].values():
        assert server["host"] and server["protocol"] in ("ws", "wss")
    [channel] = document["channels"].values()
    assert channel["address"] == "/ws" and channel["messages"]
    for section in ("channels", "operations"):
        assert all(KEY.match(key) for key in document[section]), section
    for section in ("schemas", "messages"):
        assert all(KEY.match(key) for key in document["components"][section]), section
    for name, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        assert _resolve(document, operation["channel"]["$ref"]) is channel, name
        refs = operation["messages"] + operation.get("reply", {}).get("messages", [])
        assert refs, name
        for ref in refs:  # an operation's messages are its channel's (AsyncAPI 3)
            assert ref["$ref"].startswith("#/channels/ws/messages/"), (name, ref)
    for name, message in document["components"]["messages"].items():
        assert message["name"] == name
        assert "$ref" in message["payload"], name


def test_the_document_matches_the_official_asyncapi_3_schema(document: dict[str, Any]) -> None:
    """Against AsyncAPI's own JSON Schema, when a copy is at hand (the suite runs offline).

    ``CLASSROOM_ASYNCAPI_SCHEMA`` names a local copy of ``schemas/3.0.0-without-$id.json``
    of github.com/asyncapi/spec-json-schemas; the structural tests above run always.
    """
    path = os.environ.get("CLASSROOM_ASYNCAPI_SCHEMA")
    if not path:
        pytest.skip("set CLASSROOM_ASYNCAPI_SCHEMA to AsyncAPI's 3.0.0-without-$id.json")
    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    error = best_match(validators.validator_for(schema)(schema).iter_errors(document))
    assert error is None, (list(error.absolute_path), error.message[:500])


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert len(refs) > 100
    for ref in refs:
        _resolve(document, ref)


def test_every_schema_is_a_valid_json_schema(document: dict[str, Any]) -> None:
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)  # raises, naming the schema at fault


def test_the_document_names_every_command_reply_push_and_event_kind(
    document: dict[str, Any],
) -> None:
    messages = document["components"]["messages"]
    assert set(COMMANDS) == COMMAND_TYPES
    received = {ref["$ref"].rsplit("/", 1)[1] for op in document["operations"].values()
                if op["action"] == "receive" for ref in op["messages"]}
    assert received == COMMAND_TYPES
    for command in COMMAND_TYPES:
        replies = document["operations"][command]["reply"]["messages"]
        assert [r["$ref"].rsplit("/", 1)[1] for r in replies][1:] == ["error"]
    pushes = {name for name in messages if name.startswith("event.")}
    shown = (ALL_KINDS - {"progress"}) | {"poll.tally", "session.ended", "erased",
                                          "chat.withheld", "chat.removed"}
    assert pushes == {f"event.{kind}" for kind in shown}
    for push in ("presence.join", "presence.leave", "progress", "disconnect", "error"):
        assert document["operations"][f"push.{push}"]["action"] == "send"
    publish = document["components"]["schemas"]["Publish"]["properties"]["event"]
    kinds = {document["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
             ["properties"]["kind"]["const"] for ref in publish["oneOf"]}
    assert kinds == ALL_KINDS | {"session.end"}


def test_the_wire_models_follow_the_domain() -> None:
    """A personal field the views may show, or the token may carry, is in the document."""
    assert tuple(Participant.model_fields) == PERSONAL_FIELDS
    assert set(Profile.model_fields) == {"tenant", "sub", "role", "sessions",
                                         *PROFILE_FIELDS, "display_name"}


def _doc_frames() -> list[dict[str, Any]]:
    """Every complete JSON object of docs/protocol.md that is a frame or an event."""
    frames = []
    for block in re.findall(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S):
        try:
            value = json.loads(block)
        except json.JSONDecodeError:
            continue  # shortened (``...``) examples
        if isinstance(value, dict) and ("type" in value or "kind" in value):
            frames.append(value)
    return frames


def test_the_examples_of_the_protocol_document_match(document: dict[str, Any]) -> None:
    check = contract()
    frames = _doc_frames()
    assert len(frames) > 40
    publish = {"type": "publish", "id": 1, "session": "s1"}
    for frame in frames:
        if "type" not in frame:  # a publishable event
            _, problem = check.problem({**publish, "event": frame}, sent=True)
        else:
            _, as_sent = check.problem(frame, sent=True)
            _, problem = check.problem(frame, sent=False)
            problem = None if as_sent is None else problem
        assert problem is None, (frame, problem)


GOOD_EVENT = {"type": "event", "session": "s1", "epoch": "e1", "offset": 3,
              "event": {"kind": "chat", "text": "hello", "by": {"pid": PID, "role": "student"},
                        "at": 1795637414.5}}


@pytest.mark.parametrize(("frame", "sent"), [
    ({"type": "teleport", "id": 1}, True),  # unknown command
    ({"type": "join", "id": 1, "session": 5}, True),  # wrong field type
    ({"type": "join", "id": 1, "session": "s1\n"}, True),  # "$" is the very end
    ({"type": "join", "id": 1.0, "session": "s1"}, True),  # a float is no integer
    ({"type": "join", "id": True, "session": "s1"}, True),
    ({"type": "join", "id": 1}, True),  # a required field missing
    ({"type": "history", "id": 1, "session": "s1", "limit": 0}, True),  # out of bounds
    ({"type": "publish", "id": 1, "session": "s1", "event": {"kind": "fly"}}, True),
    ({"type": "publish", "id": 1, "session": "s1",
      "event": {"kind": "pointer", "x": 0.5, "y": 0.5, "screen": None}}, True),  # null
    ({"type": "publish", "id": 1, "session": "s1",
      "event": {"kind": "chat", "text": "hi", "by": {"pid": PID, "role": "student"}}}, True),
    ({"type": "publish", "id": 1, "session": "s1",
      "event": {"kind": "progress", "screen": "a", "score": math.nan}}, True),
    ({"type": "publish", "id": 1, "session": "s1",  # a MessagePack map keyed by bin
      "event": {"kind": "annotation.add", "annotation_id": "a1", "screen": "s",
                "shape": {b"type": "circle"}}}, True),
    ({"type": "pong", "id": 1, "extra": True}, False),  # a field the document lacks
    ({"type": "pong"}, False),  # a reply without id
    ({"type": "teleported"}, False),
    ({**GOOD_EVENT, "offset": "3"}, False),
    ({**GOOD_EVENT, "event": {**GOOD_EVENT["event"], "text": 7}}, False),
    ({**GOOD_EVENT, "event": {**GOOD_EVENT["event"],
                              "by": {"pid": PID, "role": "student", "passport": "x"}}}, False),
    ({**GOOD_EVENT, "event": {**GOOD_EVENT["event"], "kind": "poll.tally"}}, False),
    ({"type": "disconnect", "code": 1012, "reason": "restart", "reconnect": "yes"}, False),
    ({"type": "error", "code": "oops", "message": "m"}, False),
])
def test_the_contract_refuses_a_made_up_frame(frame: dict[str, Any], sent: bool) -> None:
    name, problem = contract().problem(frame, sent=sent)
    assert problem is not None, (name, frame)


def test_a_good_frame_passes_in_json_and_messagepack() -> None:
    check = contract()
    for encoding in ("json", "msgpack"):
        frame = decode(encode(GOOD_EVENT, encoding), encoding)
        assert check.problem(frame, sent=False) == ("event.chat", None)


def test_the_ledger_names_the_frame_type_of_a_mismatch() -> None:
    ledger, pending = Ledger(), {}
    bad = msgpack.unpackb(msgpack.packb({**GOOD_EVENT, "offset": 0}), raw=False)
    ledger.received(bad, "msgpack", pending)
    ledger.sent({"type": "join", "id": 7, "session": "not a session id!"}, pending)
    ledger.received({"type": "joined", "id": 7, "session": "s1", "epoch": "e", "offset": 0,
                     "state": {"screen": None, "locked": False, "poll": None, "hands": [],
                               "annotations": [],
                               "options": {"student_marks": True, "student_pointers": False},
                               "timer": None, "last_poll": None},
                     "screens": None, "participants": [], "recovered": False,
                     "me": {"pid": PID, "role": "student"}}, "json", pending)
    ledger.sent({"type": "ping", "id": 8}, pending)
    ledger.received({"type": "error", "code": "bad_request", "message": "unknown command type",
                     "id": 8}, "json", pending)
    problems = ledger.take()
    assert len(problems) == 3, problems
    assert problems[0].startswith("received 'event' frame (msgpack) does not match message "
                                  "'event.chat'"), problems[0]
    assert "accepted a 'join' command (json)" in problems[1], problems[1]
    assert "accepts a 'ping' command (json) that the server refused" in problems[2], problems[2]
    assert ledger.take() == []


def test_a_contract_of_a_changed_document_catches_the_change() -> None:
    """Drift: a server frame with a field the models lack fails against the document."""
    document = build_asyncapi()
    del document["components"]["schemas"]["Participant"]["properties"]["display_name"]
    changed = Contract(document)
    frame = {**GOOD_EVENT, "event": {**GOOD_EVENT["event"],
                                     "by": {"pid": PID, "role": "student", "display_name": "A"}}}
    assert contract().problem(frame, sent=False)[1] is None
    assert changed.problem(frame, sent=False)[1] is not None
