"""Cohort progress, the rights of access and erasure, retention and the audit log."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from auth.tokens import issue_token
from tests.client import Client
from tests.conftest import RunningServer, ServerFactory
from tests.multinode.conftest import REDIS_URL, drop_prefix

ACME = {"Authorization": "Bearer acme-key"}
SCREENS = ["intro", "part-1", "part-2", "part-3", "quiz"]
COHORT = 30


def roster() -> dict[str, object]:
    return {
        "title": "Heftruck", "trainers": ["t1"], "screens": SCREENS,
        "students": [{"sub": f"u{n}", "name": f"Student{n} Achternaam{n}",
                      "email": f"student{n}@example.nl", "phone": f"+3161234{n:04d}"}
                     for n in range(COHORT)],
    }


@pytest.fixture(params=["memory", "redis"])
async def lesson(
    request: pytest.FixtureRequest, start_server: ServerFactory
) -> AsyncIterator[tuple[RunningServer, httpx.AsyncClient]]:
    """A rostered session of 30, on the embedded default and on real Redis."""
    options: dict[str, object] = {}
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        options = {"redis_url": REDIS_URL, "redis_prefix": prefix}
    server = await start_server(progress_push_interval=0.25, idle_after=0.5,
                                rate_limit_per_second=1000, rate_limit_burst=1000, **options)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.put("/api/v1/sessions/s1", json=roster(), headers=ACME)
        assert answer.status_code == 200
        yield server, http
    if request.param == "redis":
        await drop_prefix(REDIS_URL, prefix)


async def student(server: RunningServer, n: int) -> Client:
    return await server.member(f"u{n}", "student", name=f"Student{n} Achternaam{n}",
                               email=f"student{n}@example.nl")


async def test_cohort_table_covers_every_rostered_student(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    await trainer.request("publish", session="s1",
                          event={"kind": "screen.navigate", "screen": "part-3"})
    online = [await student(server, n) for n in range(10)]
    for n, client in enumerate(online[:5]):
        reply = await client.request("publish", session="s1", event={
            "kind": "progress", "screen": SCREENS[n % 4], "completed": True, "score": 10 * n})
        assert reply["type"] == "published"
    await online[2].request("publish", session="s1", event={"kind": "hand.raise"})
    await asyncio.sleep(0.6)  # online students who never reported go idle
    await online[4].request("publish", session="s1", event={
        "kind": "progress", "screen": "part-3"})
    table = (await http.get("/api/v1/sessions/s1/progress", headers=ACME)).json()
    assert table["trainer_screen"] == "part-3"
    rows = {row["participant"]["sub"]: row for row in table["students"]}
    assert len(rows) == COHORT
    assert rows["u0"]["participant"]["email"] == "student0@example.nl"
    assert rows["u1"]["screen"] == "part-1" and rows["u1"]["behind"] == 2
    assert rows["u1"]["completed"] == ["part-1"] and rows["u1"]["score"] == 10
    assert rows["u4"]["completed"] == ["intro"] and rows["u4"]["screen"] == "part-3"
    assert rows["u4"]["behind"] == 0 and rows["u4"]["idle"] is False
    assert rows["u2"]["hand_raised"] is True and rows["u3"]["hand_raised"] is False
    assert rows["u7"]["online"] is True and rows["u7"]["idle"] is True
    assert rows["u7"]["screen"] is None and rows["u7"]["behind"] is None
    assert rows["u20"]["online"] is False and rows["u20"]["idle"] is False
    assert rows["u20"]["participant"]["pid"].startswith("p")
    for client in [trainer, *online]:
        await client.close()


async def test_trainers_get_coalesced_pushes_planners_a_table_without_personal_data(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, _ = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    planner = await server.member("p1", "planner", name="Pim Planner")
    students = [await student(server, n) for n in range(COHORT)]
    for client in (trainer, planner):
        await client.quiet(0.3)
    started = time.monotonic()
    reports = 10

    async def report(client: Client, n: int) -> None:
        for step in range(reports):
            await client.send_frame({"type": "publish", "id": 1000 + step, "session": "s1",
                                     "event": {"kind": "progress", "screen": SCREENS[step % 5],
                                               "score": step}})
            await asyncio.sleep(0.02)
        for _ in range(reports):
            await client.expect("published")

    await asyncio.gather(*(report(c, n) for n, c in enumerate(students)))
    await asyncio.sleep(0.6)
    elapsed = time.monotonic() - started
    pushes = [f for f in await trainer.quiet(0.3) if f.get("type") == "progress"]
    total_reports = COHORT * reports
    assert len(pushes) <= elapsed / 0.25 + 2, (len(pushes), elapsed)
    assert len(pushes) < total_reports / 10
    latest = {}
    for push in pushes:
        for row in push["rows"]:
            latest[row["participant"]["sub"]] = row["progress"]["score"]
    assert latest == {f"u{n}": reports - 1 for n in range(COHORT)}
    assert not any(f.get("type") == "progress" for f in await planner.quiet(0.2))
    table = await planner.request("cohort", session="s1")
    assert len(table["students"]) == COHORT
    text = orjson.dumps(table).decode()
    assert "@example.nl" not in text and "Student" not in text and '"sub"' not in text
    assert (await students[0].request("cohort", session="s1"))["code"] == "forbidden"
    trainer_table = await trainer.request("cohort", session="s1")
    assert trainer_table["students"][0]["participant"]["email"] == "student0@example.nl"
    print(f"coalescing: {total_reports} reports in {elapsed:.2f}s -> {len(pushes)} pushes "
          f"({len(pushes) / elapsed:.1f}/s) to the trainer")
    for client in [trainer, planner, *students]:
        await client.close()


async def test_export_returns_everything_held_on_the_user(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    me = await student(server, 3)
    await me.request("publish", session="s1", event={"kind": "chat", "text": "my question"})
    await me.request("publish", session="s1", event={"kind": "progress", "screen": "intro",
                                                     "completed": True, "score": 55})
    export = (await http.get("/api/v1/users/u3/export", headers=ACME)).json()
    assert export["sub"] == "u3"
    assert export["profile"]["email"] == "student3@example.nl"
    assert export["sessions"] == ["s1"]
    assert export["rosters"][0]["phone"] == "+31612340003"
    assert export["progress"][0]["score"] == 55
    assert export["presence"][0]["sub"] == "u3"
    texts = [e.get("text") for e in export["events"] if e["kind"] == "chat"]
    assert texts == ["my question"]
    assert all(e["by"]["sub"] == "u3" for e in export["events"])
    assert export["mail"] == []
    assert (await http.get("/api/v1/users/nobody/export", headers=ACME)).status_code == 404
    await trainer.close()
    await me.close()


async def test_a_token_issued_before_an_erasure_never_brings_the_user_back(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    """Issue 12 point 10: a reconnect with an old token must not re-create the profile."""
    server, http = lesson
    before = time.time()
    tenant = server.tenant("acme")
    old_token = issue_token(tenant, sub="u4", role="student", sessions=["s1"], ttl=600,
                            now=before - 5, name="Student4 Achternaam4")
    me = await student(server, 4)
    assert (await http.delete("/api/v1/users/u4", headers=ACME)).status_code == 200
    assert await me.closed_code() == 4403
    again = await Client.open(server.ws_url)
    refused = await again.connect(old_token)
    assert refused["code"] == "unauthorized" and refused["message"] == "token refused"
    assert await again.closed_code() == 4401
    assert (await http.get("/api/v1/users/u4/export", headers=ACME)).status_code == 404, \
        "the refused reconnect re-created no profile"
    fresh_token = issue_token(tenant, sub="u4", role="student", sessions=["s1"], ttl=600,
                              now=before + 2)  # the back end lets the user back: a new token
    back = await Client.open(server.ws_url)
    assert (await back.connect(fresh_token))["type"] == "connected"
    await back.close()


async def test_export_holds_every_event_erasure_would_touch_and_no_one_elses_data(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    """Issue 12 point 11: events about the user (a trainer lowering their hand) are theirs too."""
    server, http = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer", email="tessa@example.nl")
    me = await student(server, 3)
    await me.request("publish", session="s1", event={"kind": "hand.raise"})
    pid = (await trainer.expect(lambda f: f.get("type") == "event"
                                and f["event"]["kind"] == "hand.raise"))["event"]["by"]["pid"]
    lowered = await trainer.request("publish", session="s1",
                                    event={"kind": "hand.lower", "participant": pid})
    assert lowered["type"] == "published"
    export = (await http.get("/api/v1/users/u3/export", headers=ACME)).json()
    kinds = [e["kind"] for e in export["events"]]
    assert kinds == ["hand.raise", "hand.lower"]
    about_me = export["events"][1]
    assert about_me["participant"]["sub"] == "u3"
    assert about_me["by"] == {"pid": about_me["by"]["pid"], "role": "trainer"}, \
        "the trainer who lowered the hand is not the subject: no name or e-mail of theirs"
    assert "tessa@example.nl" not in orjson.dumps(export).decode()
    erased = (await http.delete("/api/v1/users/u3", headers=ACME)).json()
    assert erased["events"] == len(kinds), "export listed exactly what erasure touched"
    await trainer.close()
    await me.close()


async def test_erasure_leaves_nothing_to_export_replay_or_recover(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    gone = await student(server, 5)
    stays = await student(server, 6)
    await gone.request("publish", session="s1", event={"kind": "chat",
                                                       "text": "secret of five"})
    await gone.request("publish", session="s1", event={"kind": "hand.raise"})
    await gone.request("publish", session="s1", event={"kind": "progress", "screen": "intro"})
    await stays.request("publish", session="s1", event={"kind": "chat", "text": "six here"})
    last = await stays.expect(lambda f: f.get("event", {}).get("text") == "six here")
    stays.inbox.clear()
    erased = await http.delete("/api/v1/users/u5", headers=ACME)
    assert erased.status_code == 200 and erased.json()["events"] == 2
    frame = await gone.expect("disconnect")
    assert frame["code"] == 4403 and frame["reconnect"] is False
    assert await gone.closed_code() == 4403
    left = await stays.expect("presence.leave")
    assert left["participant"]["display_name"] == "Student5"
    assert (await http.get("/api/v1/users/u5/export", headers=ACME)).status_code == 404

    def clean(text: str) -> None:
        for datum in ("secret of five", "student5@example.nl", "Student5", "Achternaam5",
                      '"u5"'):
            assert datum not in text, datum

    history = await trainer.request("history", session="s1")
    clean(orjson.dumps(history).decode())
    tombs = [e["event"] for e in history["events"] if e["event"].get("erased")]
    assert [t["kind"] for t in tombs] == ["chat", "hand.raise"]
    fresh = await server.client("u7", "student", name="Student7 Achternaam7")
    joined = await fresh.request("join", session="s1",
                                 since={"epoch": last["epoch"], "offset": 0})
    assert joined["recovered"] is True
    clean(orjson.dumps(fresh.received).decode())
    assert joined["state"]["hands"] == []
    table = (await http.get("/api/v1/sessions/s1/progress", headers=ACME)).json()
    clean(orjson.dumps(table).decode())
    assert len(table["students"]) == COHORT - 1
    again = await server.client("u5", "student", name="Student5 Achternaam5")
    rejoin = await again.request("join", session="s1", since={"epoch": last["epoch"],
                                                               "offset": 0})
    clean(orjson.dumps([f for f in again.received if f.get("type") == "event"]).decode())
    assert rejoin["type"] == "joined"
    for client in (trainer, stays, fresh, again):
        await client.close()


async def test_audit_records_reads_and_erasure_without_personal_data(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    me = await student(server, 1)
    await http.get("/api/v1/sessions/s1/presence", headers=ACME)
    await http.get("/api/v1/sessions/s1/progress", headers=ACME)
    await http.get("/api/v1/users/u1/export", headers=ACME)
    await http.delete("/api/v1/users/u1", headers=ACME)
    await http.get("/api/v1/users/u1/export", headers=ACME)
    log = (await http.get("/api/v1/audit", headers=ACME)).json()["entries"]
    assert [(e["action"], e["status"]) for e in log] == [
        ("read presence", 200), ("read progress", 200), ("export user", 200),
        ("erase user", 200), ("export user", 404)]
    assert log[2]["subject"] == log[3]["subject"] and log[2]["subject"].startswith("u")
    assert log[0]["session"] == "s1" and log[0]["route"] == "/api/v1/sessions/{sid}/presence"
    text = orjson.dumps(log).decode()
    assert "student1@example.nl" not in text and '"u1"' not in text and "Student1" not in text
    limited = (await http.get("/api/v1/audit?limit=2", headers=ACME)).json()["entries"]
    assert limited == log[-2:]
    await me.close()


async def test_ending_applies_the_tenants_retention(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    me = await student(server, 1)
    await me.request("publish", session="s1", event={"kind": "progress", "screen": "intro"})
    await http.post("/api/v1/sessions/s1/end", headers=ACME)
    store = server.app.state.classroom.records.store
    progress_ttl = await store.ttl("progress:acme:s1")
    assert progress_ttl is not None and 364 * 86400 < progress_ttl <= 365 * 86400
    broker = server.app.state.classroom.node.broker
    history_ttl = await broker.retention("acme:s1")
    assert history_ttl is not None and 29 * 86400 < history_ttl <= 30 * 86400


async def test_taken_off_the_roster_still_erased_everywhere_they_took_part(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    me = await student(server, 9)
    await me.request("publish", session="s1", event={"kind": "chat", "text": "nine speaks"})
    smaller = roster()
    smaller["students"] = [s for s in smaller["students"] if s["sub"] != "u9"]  # type: ignore[union-attr, index]
    assert (await http.put("/api/v1/sessions/s1", json=smaller, headers=ACME)).status_code == 200
    erased = (await http.delete("/api/v1/users/u9", headers=ACME)).json()
    assert erased["sessions"] == 1 and erased["events"] == 1
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    history = await trainer.request("history", session="s1")
    assert "nine speaks" not in orjson.dumps(history).decode()
    await trainer.close()


async def test_server_events_on_a_session_nobody_is_in_see_the_current_state(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    _, http = lesson
    opened = await http.post("/api/v1/sessions/s1/events", headers=ACME, json={"event": {
        "kind": "poll.open", "poll": "q1", "question": "Klaar?", "options": ["ja", "nee"]}})
    assert opened.status_code == 200
    started = time.monotonic()
    reused = await http.post("/api/v1/sessions/s1/events", headers=ACME, json={"event": {
        "kind": "poll.open", "poll": "q1", "question": "Again?", "options": ["a", "b"]}})
    assert reused.status_code == 400
    closed = await http.post("/api/v1/sessions/s1/events", headers=ACME,
                             json={"event": {"kind": "poll.close", "poll": "q1"}})
    assert closed.status_code == 200, closed.text
    assert time.monotonic() - started < 2


async def test_a_trainers_session_end_gets_its_reply_before_the_close(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    reply = await trainer.request("publish", session="s1", event={"kind": "session.end"})
    assert reply["type"] == "published"
    assert await trainer.closed_code() == 1000
    again = await http.put("/api/v1/sessions/s1", json=roster(), headers=ACME)
    assert again.status_code == 403
    late = await server.client("t1", "trainer", name="Tessa Trainer")
    assert (await late.request("video", session="s1"))["code"] == "forbidden"
    await late.close()


async def test_tombstones_look_the_same_to_everyone(
    lesson: tuple[RunningServer, httpx.AsyncClient],
) -> None:
    server, http = lesson
    trainer = await server.member("t1", "trainer", name="Tessa Trainer")
    gone = await student(server, 4)
    await trainer.request("publish", session="s1", event={
        "kind": "poll.open", "poll": "q1", "question": "?", "options": ["a", "b"]})
    await gone.request("publish", session="s1", event={"kind": "poll.answer", "poll": "q1",
                                                       "option": 1})
    await gone.request("publish", session="s1", event={"kind": "progress", "screen": "intro"})
    await http.delete("/api/v1/users/u4", headers=ACME)
    other = await student(server, 5)
    for client in (trainer, other):
        history = await client.request("history", session="s1")
        tombs = [e["event"] for e in history["events"] if e["event"].get("erased")]
        assert [t["kind"] for t in tombs] == ["poll.answer"]
        assert all(t["by"] == {"pid": "erased", "role": "erased"} for t in tombs)
    await trainer.close()
    await other.close()
