"""Token refresh on a live connection (section 3, ``refresh``): no reconnect, nothing missed."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import RunningServer

TRAINER = {"name": "Tessa Trainer", "email": "tessa@example.nl"}
STUDENT_A = {"name": "Sam Student", "email": "sam@example.nl", "phone": "+31611111111"}
STUDENT_B = {"name": "Noor de Vries", "email": "noor@example.nl", "phone": "+31622222222"}


async def test_connected_announces_expiry_and_when_to_refresh(server: RunningServer) -> None:
    client = await server.client("u1", "student", ttl=600)
    connected = client.received[-1]
    assert connected["refresh_before"] == 60
    assert abs(connected["expires_at"] - (time.time() + 600)) < 5
    await client.close()


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_a_refreshed_connection_outlives_its_first_token(
    server: RunningServer, encoding: str
) -> None:
    student = await server.client("u1", "student", ttl=1.5, encoding=encoding, **STUDENT_A)
    joined = await student.request("join", session="s1")
    trainer = await server.member("t1", "trainer", **TRAINER)
    reply = await student.request("refresh", token=server.token("u1", "student", ttl=600,
                                                                **STUDENT_A))
    assert reply["type"] == "refreshed", reply
    assert reply["left"] == [] and reply["rejoined"] == []
    assert reply["me"]["sub"] == "u1" and reply["me"]["email"] == "sam@example.nl"
    assert abs(reply["expires_at"] - (time.time() + 600)) < 5
    await asyncio.sleep(2.0)  # past the first token's expiry
    await trainer.request("publish", session="s1", event={"kind": "chat", "text": "still here?"})
    event = await student.expect("event")
    assert event["event"]["text"] == "still here?"
    assert event["epoch"] == joined["epoch"] and event["offset"] == joined["offset"] + 1
    assert not [f for f in await student.quiet(0.2) if f.get("type") == "disconnect"]
    await student.close()
    await trainer.close()


async def test_sessions_no_longer_granted_are_left(server: RunningServer) -> None:
    student = await server.client("u1", "student", ["s1", "s2"], **STUDENT_A)
    await student.request("join", session="s1")
    await student.request("join", session="s2")
    other = await server.member("u2", "student", session="s2", **STUDENT_B)
    await student.expect("presence.join")
    reply = await student.request("refresh", token=server.token("u1", "student", ["s1"],
                                                                **STUDENT_A))
    assert reply["left"] == ["s2"]
    leave = await other.expect("presence.leave")
    assert leave["session"] == "s2"
    await other.request("publish", session="s2", event={"kind": "chat", "text": "gone?"})
    frames = await student.quiet(0.3)
    assert not [f for f in frames if f.get("session") == "s2"], frames
    assert (await student.request("join", session="s2"))["code"] == "forbidden"
    assert (await student.request("leave", session="s1"))["type"] == "left"
    await student.close()
    await other.close()


async def test_a_changed_role_takes_effect_at_once(server: RunningServer) -> None:
    assistant = await server.member("a1", "student", **TRAINER)
    student = await server.member("u2", "student", **STUDENT_B)
    seen_as_student = await assistant.request("presence", session="s1")
    assert [p.get("email") for p in seen_as_student["participants"]] == [
        "tessa@example.nl", None]

    reply = await assistant.request("refresh", token=server.token("a1", "trainer", **TRAINER))
    assert reply["rejoined"] == ["s1"] and reply["me"]["role"] == "trainer"
    rejoined = next(f for f in assistant.inbox if f.get("type") == "joined")
    assert "id" not in rejoined and rejoined["me"]["role"] == "trainer"
    shown = {p["pid"]: p for p in rejoined["participants"]}
    assert shown[rejoined["me"]["pid"]]["role"] == "trainer"
    assert any(p.get("email") == "noor@example.nl" for p in shown.values())

    announced = await student.expect("presence.join")
    assert announced["participant"]["role"] == "trainer"
    assert "email" not in announced["participant"]

    # From now on the hub renders for the trainer's view: hands carry names for trainers.
    await student.request("publish", session="s1", event={"kind": "hand.raise"})
    event = await assistant.expect("event")
    assert event["offset"] == rejoined["offset"] + 1
    assert event["event"]["by"].get("email") == "noor@example.nl"
    # And the trainer may now do what only trainers may.
    lock = await assistant.request("publish", session="s1",
                                   event={"kind": "screen.lock", "locked": True})
    assert lock["type"] == "published", lock
    await assistant.close()
    await student.close()


@pytest.mark.parametrize("who", ["another user", "another tenant", "not a token", "expired"])
async def test_a_refused_refresh_keeps_the_connection_on_its_old_token(
    server: RunningServer, who: str
) -> None:
    student = await server.member("u1", "student", **STUDENT_A)
    token = {
        "another user": server.token("u2", "student"),
        "another tenant": server.token("u1", "student", tenant="globex"),
        "not a token": "not-a-jwt",
        "expired": server.token("u1", "student", ttl=-60),
    }[who]
    reply = await student.request("refresh", token=token)
    assert reply["type"] == "error" and reply["code"] == "forbidden", reply
    assert "u2" not in reply["message"]
    assert (await student.request("ping"))["type"] == "pong"
    assert (await student.request("presence", session="s1"))["type"] == "presence"
    await student.close()


async def test_refresh_before_connect_is_unauthorized(server: RunningServer) -> None:
    from tests.client import Client

    client = await Client.open(server.ws_url)
    reply = await client.request("refresh", token=server.token("u1", "student"))
    assert reply["code"] == "unauthorized"
    assert await client.closed_code() == 4401
