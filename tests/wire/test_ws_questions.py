"""Questions to the trainers and removed messages, over the wire, for every role and in storage.

A question (``chat`` with ``to: "trainers"``) must reach only the trainers and its
author, live, in history, in a replay and in the export of other users, while
everyone else's offsets stay gapless. A removed message (``chat.remove``) is
rewritten in the stored stream: on the embedded broker, on Redis and on a Redis
Cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from tests.backends.conftest import REDIS_URL, drop_prefix
from tests.client import Client
from tests.conftest import RunningServer, ServerFactory

ACME = {"Authorization": "Bearer acme-key"}
QUESTION = "May I hand in the assignment a week later? My mother is in hospital."
PEOPLE = {  # sub: (role, name, encoding)
    "t1": ("trainer", "Tessa Trainer", "json"),
    "t2": ("trainer", "Tom Tutor", "msgpack"),
    "u1": ("student", "Sam Student", "msgpack"),
    "u2": ("student", "Sue Student", "json"),
    "p1": ("planner", "Pim Planner", "json"),
    "c1": ("content_manager", "Cas Content", "msgpack"),
}
NO_CHAT = "no chat message at that offset"


@pytest.fixture(params=["memory", "redis", "cluster"])
async def lesson(
    request: pytest.FixtureRequest, start_server: ServerFactory,
) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    """A session with a roster, on the embedded broker, on Redis and on a Redis Cluster."""
    options: dict[str, object] = {}
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    url = REDIS_URL
    if request.param == "cluster":
        url = request.getfixturevalue("cluster_set").url
    if request.param != "memory":
        options = {"redis_url": url, "redis_prefix": prefix}
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000, **options)
    roster = {"trainers": ["t1", "t2"], "students": [{"sub": "u1"}, {"sub": "u2"}]}
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.put("/api/v1/sessions/s1", json=roster,
                               headers=ACME)).status_code == 200
        yield server, http
    if request.param != "memory":
        await drop_prefix(url, prefix)


async def everyone(server: RunningServer) -> dict[str, Client]:
    return {sub: await server.member(sub, role, encoding=encoding, name=name)
            for sub, (role, name, encoding) in PEOPLE.items()}


async def publish(client: Client, msg_id: str | None = None, **event: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"session": "s1", "event": event}
    if msg_id is not None:
        fields["client_msg_id"] = msg_id
    return await client.request("publish", **fields)


async def at_offset(client: Client, offset: int) -> dict[str, Any]:
    frame = await client.expect(lambda f: f.get("type") == "event" and f.get("offset") == offset)
    return dict(frame["event"])


async def history_at(client: Client, offset: int) -> dict[str, Any]:
    reply = await client.request("history", session="s1")
    return next(dict(e["event"]) for e in reply["events"] if e["offset"] == offset)


def full(event: dict[str, Any]) -> bool:
    return event.get("text") == QUESTION and event.get("to") == "trainers"


def withheld(event: dict[str, Any]) -> bool:
    return event == {"kind": "chat", "to": "trainers", "withheld": True, "at": event["at"]}


async def test_a_question_reaches_the_trainers_and_its_author_only(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    people = await everyone(server)
    before = await publish(people["u2"], kind="chat", text="hello all")
    asked = await publish(people["u1"], kind="chat", text=QUESTION, to="trainers")
    after = await publish(people["t1"], kind="chat", text="welcome")
    offset = asked["offset"]
    assert (before["offset"], after["offset"]) == (offset - 1, offset + 1)
    for sub, client in people.items():
        live = await at_offset(client, offset)
        stored = await history_at(client, offset)
        for event in (live, stored):
            if PEOPLE[sub][0] == "trainer" or sub == "u1":
                assert full(event), sub
            else:
                assert withheld(event), sub
        seen = [f["offset"] for f in client.received if f.get("type") == "event"]
        assert seen == list(range(1, after["offset"] + 1)), "offsets stay gapless"
        assert QUESTION in orjson.dumps(client.received).decode() or (
            PEOPLE[sub][0] != "trainer" and sub != "u1")
    # A replay after a reconnect renders the question the same way.
    epoch = asked["epoch"]
    for sub in ("u2", "p1", "u1", "t2"):
        back = await server.client(sub, PEOPLE[sub][0], name=PEOPLE[sub][1],
                                   encoding=PEOPLE[sub][2])
        joined = await back.request("join", session="s1", since={"epoch": epoch, "offset": 0})
        assert joined["recovered"] is True
        replayed = next(f["event"] for f in back.inbox if f.get("offset") == offset)
        assert full(replayed) if sub in ("u1", "t2") else withheld(replayed), sub
        await back.close()
    # The export of anyone but the author holds nothing of it; the author's holds it whole.
    exports = {sub: (await http.get(f"/api/v1/users/{sub}/export", headers=ACME)).json()
               for sub in ("u1", "u2", "t1", "p1")}
    assert QUESTION in orjson.dumps(exports["u1"]["events"]).decode()
    for sub in ("u2", "t1", "p1"):
        assert QUESTION not in orjson.dumps(exports[sub]).decode(), sub
    for client in people.values():
        await client.close()


async def test_a_removed_message_is_gone_from_history_and_replays_for_everyone(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    people = await everyone(server)
    trainer, sam = people["t1"], people["u1"]
    navigate = await publish(trainer, kind="screen.navigate", screen="intro")
    said = await publish(sam, kind="chat", text="something I regret")
    asked = await publish(sam, kind="chat", text=QUESTION, to="trainers")
    refused = await publish(sam, kind="chat.remove", message=said["offset"])
    assert refused["code"] == "forbidden"
    removed = await publish(trainer, "rm-1", kind="chat.remove", message=said["offset"])
    assert removed["type"] == "published" and removed["offset"] == asked["offset"] + 1
    for client in people.values():
        event = await at_offset(client, removed["offset"])
        assert event["kind"] == "chat.remove" and event["message"] == said["offset"]
        assert await history_at(client, said["offset"]) == {
            "kind": "chat", "removed": True, "at": event_at(client, said["offset"])}
    # A retry answers the first removal; nothing is stored twice.
    again = await publish(trainer, "rm-1", kind="chat.remove", message=said["offset"])
    assert (again["offset"], again["epoch"]) == (removed["offset"], removed["epoch"])
    for offset in (said["offset"], navigate["offset"], removed["offset"] + 5):
        refusal = await publish(trainer, kind="chat.remove", message=offset)
        assert (refusal["code"], refusal["message"]) == ("bad_request", NO_CHAT), offset
    # The back end removes the question the same way; then no one, trainers included, reads it.
    answer = await http.post("/api/v1/sessions/s1/events", headers=ACME,
                             json={"event": {"kind": "chat.remove", "message": asked["offset"]}})
    assert answer.status_code == 200, answer.text
    late = await server.client("u2", "student", name="Sue Student")
    joined = await late.request("join", session="s1",
                                since={"epoch": said["epoch"], "offset": 0})
    assert joined["recovered"] is True
    replay = {f["offset"]: f["event"] for f in late.inbox if f.get("type") == "event"}
    for offset in (said["offset"], asked["offset"]):
        assert replay[offset]["removed"] is True and set(replay[offset]) == {"kind", "removed",
                                                                               "at"}
    for client in (*people.values(), late):
        text = orjson.dumps((await client.request("history", session="s1"))["events"]).decode()
        assert "regret" not in text and QUESTION not in text
        await client.close()
    export = (await http.get("/api/v1/users/u1/export", headers=ACME)).json()
    assert "regret" not in orjson.dumps(export).decode()


def event_at(client: Client, offset: int) -> float:
    """The ``at`` of the event this client received live at ``offset``."""
    return float(next(f["event"]["at"] for f in client.received
                      if f.get("type") == "event" and f.get("offset") == offset))
