"""A whole scripted lesson, then every frame each recipient got is searched for personal data.

Section 6: a trainer sees students' sub, name, e-mail and phone; a student sees
display names only (and everything of itself); planners and content managers
see nothing more than pids and roles.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from classroom.logs import JsonFormatter
from tests.client import Client
from tests.conftest import RunningServer

PEOPLE = {
    "trainer-ref-71": ("trainer", "Wendelien Brouwersgracht", "wendelien@acme.example",
                       "+31600000071", "wbrouwer"),
    "trainer-ref-72": ("trainer", "Gijsbert Oudemolen", "gijsbert@acme.example",
                       "+31600000072", "goudemol"),
    "student-ref-81": ("student", "Xanthe Quistorp", "xanthe@mail.example",
                       "+31600000081", "xquist"),
    "student-ref-82": ("student", "Yorick Zwanenburg", "yorick@mail.example",
                       "+31600000082", "yzwanen"),
    "student-ref-83": ("student", "Zilvia Achterberg", "zilvia@mail.example",
                       "+31600000083", "zachter"),
    "planner-ref-91": ("planner", "Pieternella Vlieland", "pieternella@acme.example",
                       "+31600000091", "pvlieland"),
}


def secrets_of(sub: str) -> list[str]:
    """Strings that identify ``sub`` beyond a display name."""
    _, name, email, phone, username = PEOPLE[sub]
    return [sub, name, name.split()[1], email, phone, username]


def first_name(sub: str) -> str:
    return PEOPLE[sub][1].split()[0]


async def _member(server: RunningServer, sub: str, encoding: str) -> Client:
    role, name, email, phone, username = PEOPLE[sub]
    return await server.member(sub, role, encoding=encoding, name=name, email=email,
                               phone=phone, username=username)


async def test_scripted_lesson_leaks_nothing_beyond_the_role_table(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clients: dict[str, Client] = {}
    for index, sub in enumerate(PEOPLE):
        clients[sub] = await _member(server, sub, "json" if index % 2 else "msgpack")
    t1, t2 = clients["trainer-ref-71"], clients["trainer-ref-72"]
    s1, s2, s3 = clients["student-ref-81"], clients["student-ref-82"], clients["student-ref-83"]
    planner = clients["planner-ref-91"]

    async def publish(client: Client, **event: object) -> dict[str, object]:
        reply = await client.request("publish", session="s1", event=event)
        assert reply["type"] == "published", reply
        return reply

    await publish(t1, kind="screen.navigate", screen="welcome")
    await publish(t1, kind="session.options", student_pointers=True)
    await publish(t1, kind="screen.lock", locked=True)
    await publish(s1, kind="chat", text="good morning")
    await publish(s2, kind="hand.raise")
    await publish(s3, kind="hand.raise")
    await publish(s1, kind="annotation.add", annotation_id="n1", screen="welcome",
                  shape={"type": "arrow"})
    await publish(s2, kind="pointer", x=0.5, y=0.5)
    await publish(s3, kind="reaction", emoji="🎉")
    roster = await t1.request("presence", session="s1")
    s2_pid = next(p["pid"] for p in roster["participants"] if p.get("sub") == "student-ref-82")
    await publish(t1, kind="hand.lower", participant=s2_pid)
    await publish(t2, kind="poll.open", poll="q1", question="Clear?", options=["yes", "no"])
    for student, option in ((s1, 0), (s2, 1), (s3, 0)):
        await publish(student, kind="poll.answer", poll="q1", option=option)
    await publish(t2, kind="poll.close", poll="q1")
    for student, screen in ((s1, "welcome"), (s2, "welcome"), (s3, "intro")):
        await publish(student, kind="progress", screen=screen, completed=True, score=75)
    await s3.request("leave", session="s1")
    joined = await s3.request("join", session="s1", since={"epoch": roster.get("epoch", ""),
                                                           "offset": 0})
    assert joined["type"] == "joined"
    for client in clients.values():
        await client.request("presence", session="s1")
        await client.request("history", session="s1")
        await client.quiet(0.3)
    await s1.close()
    for client in (t1, planner, s2):
        await client.quiet(0.3)

    texts = {sub: orjson.dumps(c.received).decode() for sub, c in clients.items()}
    students = [s for s in PEOPLE if PEOPLE[s][0] == "student"]
    trainers = [s for s in PEOPLE if PEOPLE[s][0] == "trainer"]

    for sub, text in texts.items():
        role = PEOPLE[sub][0]
        for own in secrets_of(sub):
            assert own in text, f"{sub} never saw its own {own!r}"
        for other in PEOPLE:
            if other == sub:
                continue
            visible = role == "trainer" and PEOPLE[other][0] == "student"
            for datum in secrets_of(other):
                if visible:
                    assert datum in text, f"trainer {sub} should see {other}'s data"
                else:
                    assert datum not in text, f"{sub} ({role}) saw {other}'s data"
            shows_display = role in ("trainer", "student") and PEOPLE[other][0] != "planner"
            if shows_display:
                assert first_name(other) in text
            elif role == "planner":
                assert first_name(other) not in text, f"planner saw {other}'s name"

    # The server's logs of the whole lesson name no one.
    formatter = JsonFormatter()
    logged = "\n".join(formatter.format(r) for r in caplog.records
                        if r.name.startswith("classroom"))
    tokens = [server.token(sub, PEOPLE[sub][0]) for sub in PEOPLE]
    for sub in PEOPLE:
        for datum in secrets_of(sub):
            assert datum not in logged, datum
    assert not any(token.split(".")[0] + "." in logged for token in tokens[:1])
    assert "@" not in logged

    # Individual answers reach trainers only; the others get tallies.
    for sub in [*students, "planner-ref-91"]:
        frames = clients[sub].received
        kinds = {f.get("event", {}).get("kind") for f in frames}
        assert "poll.answer" not in kinds and "poll.tally" in kinds
        assert not any(f.get("type") == "progress" for f in frames)
    for sub in trainers:
        pushes = [f for f in clients[sub].received if f.get("type") == "progress"]
        reported = {row["participant"]["sub"] for f in pushes for row in f["rows"]}
        assert reported == set(students)
