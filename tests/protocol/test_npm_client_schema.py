"""The npm client's copy of the AsyncAPI document is the server's own.

Its TypeScript types are generated from that copy (``npm test`` checks the types
against it), so a wire change that is not carried to the package fails here:
run ``make client-types``.
"""

from __future__ import annotations

from pathlib import Path

from classroom.cli import asyncapi_json

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "js"


def test_the_npm_clients_asyncapi_copy_is_current() -> None:
    committed = (PACKAGE / "asyncapi.json").read_text(encoding="utf-8")
    assert committed == asyncapi_json(), "clients/js is behind the wire: run `make client-types`"


def test_the_generated_types_name_every_message() -> None:
    types = (PACKAGE / "src" / "protocol.d.ts").read_text(encoding="utf-8")
    for name in ("Connect", "Connected", "Joined", "Publish", "Published", "Refreshed",
                 "PresenceDiff", "HistoryReply", "CohortReply", "Error"):
        assert f"export interface {name} " in types, name
