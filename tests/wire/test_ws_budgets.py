"""Limits on what one client may cost the room: budgets, floods, connections, replays.

Issue 12 point 3 and 4: a pointer, a reaction, a join or a leave reaches every
member; a flood of refused commands is a flood like bad frames; one user may not
open sockets without end; a join asking for the whole history costs the send
bound and a replay allowance.
"""

from __future__ import annotations

import asyncio
import json
import time

from classroom.protocol.budgets import FANOUT_BUDGETS
from tests.client import Client, small_receive_socket
from tests.conftest import TENANTS, ServerFactory

POINTER = {"kind": "pointer", "x": 0.5, "y": 0.5}


async def test_a_student_pointer_flood_is_refused_past_the_budget_and_others_see_only_it(
    start_server: ServerFactory,
) -> None:
    pointing = {**TENANTS, "acme": {**TENANTS["acme"], "student_pointers": True}}
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000,
                                bad_frames_limit=1000, tenants_raw=json.dumps(pointing))
    student = await server.member("u1", "student")
    watcher = await server.member("u2", "student")
    burst = FANOUT_BUDGETS["pointer"].burst
    for n in range(burst + 20):
        await student.send_frame({"type": "publish", "id": n, "session": "s1", "event": POINTER})
    answers = [f for f in await student.quiet(0.5) if f["type"] in ("published", "error")]
    refused = [f for f in answers if f.get("code") == "rate_limited"]
    assert len(answers) == burst + 20
    assert len(refused) >= 19, "the pointers past the burst are refused"
    assert all("pointer" in r["message"] for r in refused)
    seen = [f for f in await watcher.quiet(0.3) if f["type"] == "event"]
    assert len(seen) == len(answers) - len(refused) <= burst + 1
    await student.close()
    await watcher.close()


async def test_the_budget_is_per_user_across_connections(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000,
                                bad_frames_limit=1000)
    tabs = [await server.member("u1", "student") for _ in range(2)]
    burst = FANOUT_BUDGETS["reaction"].burst
    results = []
    for n in range(burst + 6):
        tab = tabs[n % 2]
        results.append(await tab.request("publish", session="s1",
                                          event={"kind": "reaction", "emoji": "+1"}))
    assert sum(r.get("code") == "rate_limited" for r in results) >= 5
    for tab in tabs:
        await tab.close()


async def test_join_and_leave_loops_draw_on_the_presence_budget(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit_per_second=1000, rate_limit_burst=1000,
                                bad_frames_limit=1000)
    client = await server.client("u1", "student")
    answers = []
    for _ in range(FANOUT_BUDGETS["presence"].burst):
        answers.append((await client.request("join", session="s1"))["type"])
        answers.append((await client.request("leave", session="s1"))["type"])
    assert "joined" in answers
    assert answers.count("error") >= FANOUT_BUDGETS["presence"].burst // 2
    await client.close()


async def test_a_flood_of_refused_commands_closes_4400(start_server: ServerFactory) -> None:
    server = await start_server(rate_limit_per_second=1, rate_limit_burst=1)
    client = await server.client("u1", "student")
    for n in range(40):
        await client.send_frame({"type": "ping", "id": n})
    assert await client.closed_code() == 4400


async def test_a_user_past_the_connection_cap_is_refused_4429(
    start_server: ServerFactory,
) -> None:
    server = await start_server(max_connections_per_user=2)
    token = server.token("u1", "student")
    first, second = await server.client("u1", "student"), await server.client("u1", "student")
    third = await Client.open(server.ws_url)
    answer = await third.connect(token)
    assert answer["type"] == "error" and answer["code"] == "rate_limited"
    assert await third.closed_code() == 4429
    other = await server.client("u2", "student")  # another user is not affected
    assert (await other.request("ping"))["type"] == "pong"
    await second.close()
    await asyncio.sleep(0.1)
    fourth = await Client.open(server.ws_url)
    assert (await fourth.connect(token))["type"] == "connected"
    for client in (first, fourth, other):
        await client.close()


async def test_a_join_replay_larger_than_the_send_bound_arrives_whole_to_a_reader(
    start_server: ServerFactory,
) -> None:
    server = await start_server(send_queue_max_bytes=16 * 1024, rate_limit_per_second=10_000,
                                rate_limit_burst=10_000)
    trainer = await server.client("t1", "trainer", ["s2"])
    joined = await trainer.request("join", session="s2")
    for n in range(300):
        await trainer.request("publish", session="s2",
                              event={"kind": "chat", "text": f"{n:04d} " + "x" * 200})
    student = await server.client("u1", "student", sessions=["s2"])
    reply = await student.request("join", session="s2",
                                  since={"epoch": joined["epoch"], "offset": 0})
    assert reply["type"] == "joined" and reply["recovered"] is True
    # The replay came first: 300 events, in order, ~70 KiB through a 16 KiB bound.
    offsets = [frame["offset"] for frame in student.inbox if frame["type"] == "event"]
    assert offsets == list(range(1, 301))
    await trainer.close()
    await student.close()


async def test_a_client_that_does_not_read_its_replay_is_closed_4008(
    start_server: ServerFactory,
) -> None:
    server = await start_server(send_queue_max_bytes=16 * 1024, rate_limit_per_second=10_000,
                                rate_limit_burst=10_000, replay_stall_timeout=0.5,
                                close_timeout=10.0)
    trainer = await server.client("t1", "trainer", ["s2"])
    joined = await trainer.request("join", session="s2")
    for n in range(400):
        await trainer.request("publish", session="s2",
                              event={"kind": "chat", "text": f"{n:04d} " + "x" * 1000})
    sleeper = await Client.open(server.ws_url, sock=small_receive_socket(server.port),
                                max_queue=1)
    await sleeper.connect(server.token("u1", "student", ["s2"]))
    await sleeper.send_frame({"type": "join", "id": 1, "session": "s2",
                              "since": {"epoch": joined["epoch"], "offset": 0}})
    await asyncio.sleep(2.0)  # never reads; the server gives up on it
    started = time.monotonic()
    assert (await trainer.request("ping"))["type"] == "pong", "the node is not stalled"
    assert time.monotonic() - started < 0.5
    assert await sleeper.closed_code(timeout=20) == 4008
    await trainer.close()


async def test_asking_for_more_history_than_the_allowance_gets_the_state_not_a_replay(
    start_server: ServerFactory,
) -> None:
    server = await start_server(rate_limit_per_second=10_000, rate_limit_burst=10_000,
                                fanout_budget_scale=1000)  # joins and leaves in a loop
    trainer = await server.client("t1", "trainer", ["s2"])
    joined = await trainer.request("join", session="s2")
    for n in range(1000):
        await trainer.send_frame({"type": "publish", "id": n, "session": "s2",
                                  "event": {"kind": "chat", "text": f"{n}"}})
    await trainer.expect(lambda frame: frame.get("id") == 999, timeout=30)
    student = await server.client("u1", "student", sessions=["s2"])
    since = {"epoch": joined["epoch"], "offset": 0}
    recovered = []
    for _ in range(60):  # 60 x 1000 events is far more than the 20,000-event allowance
        reply = await student.request("join", session="s2", since=since)
        recovered.append(reply["recovered"])
        await student.request("leave", session="s2")
        if not reply["recovered"]:
            break
    assert recovered[0] is True and recovered[-1] is False
    await trainer.close()
    await student.close()
