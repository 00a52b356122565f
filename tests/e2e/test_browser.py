"""The web client end to end: real pages in headless Chromium against a real server.

Every person has a browser context of their own (as on their own device). The
assertions are about what a user sees on the page. Screenshots of each page go
to ``artifacts/screenshots/`` for review.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Page, expect
from starlette.applications import Starlette

from classroom.edge.web_pages import web_routes
from tests.client import Client
from tests.conftest import TENANTS, RunningServer
from tests.e2e.conftest import (
    OpenPage,
    Person,
    make_settings,
    page_url,
    put_roster,
    serve_app,
    token_for,
)

REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")

expect.set_options(timeout=10_000)


def no_errors(*people: Person) -> None:
    """No script errors and no Content-Security-Policy violations on any page."""
    for person in people:
        assert person.errors == [], f"{person.name}: {person.errors}"


async def trainer_member(server: RunningServer, session: str = "s1") -> Client:
    """A trainer connected over the protocol (no page), to drive a lesson quickly."""
    client = await Client.open(server.ws_url)
    reply = await client.connect(token_for(server, "t1", session))
    assert reply["type"] == "connected", reply
    joined = await client.request("join", session=session)
    assert joined["type"] == "joined", joined
    return client


async def publish(client: Client, event: dict[str, object], session: str = "s1") -> None:
    reply = await client.request("publish", session=session, event=event)
    assert reply["type"] == "published", reply


def heading(page: Page) -> object:
    return page.get_by_role("heading", level=1)


# -- the lesson: navigation, lock, hands and privacy -------------------------------------------


async def test_students_follow_the_trainer_obey_the_lock_and_see_display_names_only(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    base = web_server.http_url
    trainer = await open_page(page_url(base, "trainer", token_for(web_server, "t1")), "trainer")
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam")
    noor = await open_page(page_url(base, "student", token_for(web_server, "u2")), "Noor")

    # The token was read from the fragment and removed from the address bar.
    for person in (trainer, sam, noor):
        assert "token" not in person.page.url, person.page.url

    # The trainer navigates; both students follow.
    await trainer.page.get_by_role(
        "button", name="Ga naar Het model: waarneming, effect, vraag").click()
    for student in (sam, noor):
        await expect(heading(student.page)).to_have_text("Het model: waarneming, effect, vraag")
        await expect(student.page.get_by_text("Scherm 3 van 6")).to_be_visible()

    # Unlocked, a student may look ahead, and is offered the way back.
    await sam.page.get_by_role("button", name="Volgende").click()
    await expect(heading(sam.page)).to_have_text("Een voorbeeld")
    back = sam.page.get_by_role("button", name="Volg de trainer")
    await expect(back).to_be_visible()

    # The trainer locks: everyone is pulled to the trainer's screen and stays there.
    await trainer.page.get_by_role("button", name="Schermen vergrendelen").click()
    await expect(trainer.page.get_by_text("Vergrendeld: deelnemers volgen jou")).to_be_visible()
    for student in (sam, noor):
        await expect(heading(student.page)).to_have_text("Het model: waarneming, effect, vraag")
        await expect(student.page.get_by_text("Vergrendeld door de trainer")).to_be_visible()
        await expect(student.page.get_by_role("button", name="Volgende")).to_be_disabled()
        await expect(student.page.get_by_role("button", name="Vorige")).to_be_disabled()
    await trainer.page.get_by_role("button", name="Volgende").click()
    for student in (sam, noor):
        await expect(heading(student.page)).to_have_text("Een voorbeeld")

    # The trainer's pointer and marks appear on the students' screens.
    await trainer.page.get_by_role("radio", name="Cirkel").check()
    await trainer.page.locator("#stage").click(position={"x": 200, "y": 150})
    await expect(sam.page.get_by_text("1 markering op dit scherm.")).to_be_attached()
    await expect(sam.page.locator(".annotation")).to_have_count(1)
    await trainer.page.mouse.move(400, 300)
    await trainer.page.mouse.move(420, 310)
    await expect(sam.page.locator(".pointer")).to_be_visible()

    # Sam raises a hand: the trainer's queue names Sam in full, Noor sees "Sam" only.
    await sam.page.get_by_role("button", name="Hand opsteken").click()
    queue = trainer.page.get_by_role("region", name="Opgestoken handen")
    await expect(queue.get_by_role("listitem")).to_have_count(1)
    await expect(queue.get_by_role("listitem").first).to_contain_text("Sam Student")
    present = noor.page.get_by_role("region", name="Aanwezig")
    raised = present.get_by_role("listitem").filter(has_text="hand opgestoken")
    await expect(raised).to_contain_text("Sam")
    await expect(present).to_contain_text("Tessa")
    await expect(sam.page.get_by_text("Je hand is opgestoken.")).to_be_visible()
    for page in (noor.page, sam.page):
        await expect(page.locator("body")).not_to_contain_text("Sam Student")
        await expect(page.locator("body")).not_to_contain_text("Noor de Vries")
        await expect(page.locator("body")).not_to_contain_text("@example.nl")
        await expect(page.locator("body")).not_to_contain_text("Tessa Trainer")

    # A second hand queues behind the first, in order.
    await noor.page.get_by_role("button", name="Hand opsteken").click()
    await expect(queue.get_by_role("listitem")).to_have_count(2)
    await expect(queue.get_by_role("listitem")).to_contain_text(["Sam Student", "Noor de Vries"])

    # Reactions, named as each side may see them.
    await sam.page.get_by_role("button", name="Duim omhoog").click()
    await expect(trainer.page.get_by_text("Sam Student: 👍")).to_be_visible()
    await expect(noor.page.get_by_text("Sam: 👍")).to_be_visible()

    # Chat, as each side may see it.
    await noor.page.get_by_label("Bericht", exact=True).fill("Mag ik iets vragen?")
    await noor.page.get_by_label("Bericht", exact=True).press("Enter")
    await expect(trainer.page.get_by_role("log")).to_contain_text("Noor de Vries")
    await expect(trainer.page.get_by_role("log")).to_contain_text("Mag ik iets vragen?")
    await expect(sam.page.get_by_role("log")).to_contain_text("Noor")
    await expect(sam.page.get_by_role("log")).to_contain_text("Mag ik iets vragen?")

    await trainer.screenshot("trainer.png")
    await sam.screenshot("student-sam.png")
    await noor.screenshot("student-noor.png")

    # The trainer takes Sam's question: the hand goes down everywhere.
    await trainer.page.get_by_role("button", name="Hand omlaag voor Sam Student").click()
    await expect(queue.get_by_role("listitem")).to_have_count(1)
    await expect(queue.get_by_role("listitem").first).to_contain_text("Noor de Vries")
    await expect(sam.page.get_by_text("Je hand is opgestoken.")).to_be_hidden()
    # The button says again what pressing it does: raise the hand.
    await expect(sam.page.get_by_role("button", name="Hand opsteken")).to_be_visible()
    no_errors(trainer, sam, noor)


async def test_poll_round_trip_with_live_tallies_and_individual_answers(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    base = web_server.http_url
    trainer = await open_page(page_url(base, "trainer", token_for(web_server, "t1")), "trainer")
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam")
    noor = await open_page(page_url(base, "student", token_for(web_server, "u2")), "Noor")

    await trainer.page.get_by_role("textbox", name="Vraag").fill("Is het model duidelijk?")
    await trainer.page.get_by_role("textbox", name="Antwoorden").fill("Ja\nNee")
    await trainer.page.get_by_role("button", name="Peiling openen").click()

    for student in (sam, noor):
        poll = student.page.get_by_role("region", name="Peiling")
        await expect(poll).to_contain_text("Is het model duidelijk?")
    # The pages take tallies coalesced (one per window, not one per answer: a lecture's
    # poll no longer sends every student a frame per answer); the chart needs no more.
    classroom = web_server.app.state.classroom
    for sub in ("t1", "u1", "u2"):
        connections = classroom.connections.of_user("acme", sub)
        assert connections and all("poll.tally.coalesced" in c.features for c in connections)
    await sam.page.get_by_role("group", name="Is het model duidelijk?").get_by_role(
        "button", name="Ja").click()
    await noor.page.get_by_role("group", name="Is het model duidelijk?").get_by_role(
        "button", name="Nee").click()

    trainer_poll = trainer.page.get_by_role("region", name="Peiling")
    tally = trainer_poll.get_by_role("list", name="Uitslag")
    await expect(tally.get_by_role("listitem")).to_have_text([re.compile("Ja.*1 stem"),
                                                             re.compile("Nee.*1 stem")])
    answers = trainer_poll.get_by_role("list", name="Antwoorden per deelnemer")
    await expect(answers.get_by_role("listitem")).to_have_text(
        ["Sam Student — Ja", "Noor de Vries — Nee"])
    await expect(sam.page.get_by_text("Jouw antwoord: Ja")).to_be_visible()

    # Sam changes their mind: only the latest answer counts, live on every screen.
    await sam.page.get_by_role("group", name="Is het model duidelijk?").get_by_role(
        "button", name="Nee").click()
    await expect(tally.get_by_role("listitem")).to_have_text([re.compile("Ja.*0 stemmen"),
                                                             re.compile("Nee.*2 stemmen")])
    await expect(answers.get_by_role("listitem")).to_have_text(
        ["Noor de Vries — Nee", "Sam Student — Nee"])
    student_poll = noor.page.get_by_role("region", name="Peiling")
    student_tally = student_poll.get_by_role("list", name="Uitslag")
    await expect(student_tally.get_by_role("listitem")).to_have_text(
        [re.compile("Ja.*0 stemmen"), re.compile("Nee.*2 stemmen")])
    await expect(noor.page.locator("body")).not_to_contain_text("Sam Student")
    await trainer.screenshot("trainer-poll.png")
    await sam.screenshot("student-poll.png")

    await trainer_poll.get_by_role("button", name="Peiling sluiten").click()
    for student in (sam, noor):
        poll = student.page.get_by_role("region", name="Peiling")
        await expect(poll).to_contain_text("Is het model duidelijk?")
        await expect(poll).to_contain_text("Deze peiling is gesloten.")
        # One results heading, not the question turned into a second one.
        await expect(poll.get_by_text(re.compile("Uitslag"))).to_have_count(1)
        await expect(poll.get_by_role("button", name="Ja")).to_have_count(0)
        await expect(poll.get_by_role("list", name="Uitslag").get_by_role("listitem")).to_have_text(
            [re.compile("Ja.*0 stemmen"), re.compile("Nee.*2 stemmen")])
    # The trainer keeps the final results in view until starting the next poll.
    final = trainer_poll.get_by_role("list", name="Uitslag")
    await expect(final.get_by_role("listitem")).to_have_count(2)
    await trainer_poll.get_by_role("button", name="Nieuwe peiling").click()
    await expect(trainer_poll.get_by_role("button", name="Peiling openen")).to_be_visible()
    no_errors(trainer, sam, noor)


# -- the cohort dashboard --------------------------------------------------------------------


async def test_dashboard_updates_live_and_shows_who_needs_help(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    await put_roster(web_server)
    base = web_server.http_url
    teacher = await trainer_member(web_server)
    await publish(teacher, {"kind": "screen.navigate", "screen": "practice"})

    dashboard = await open_page(page_url(base, "dashboard", token_for(web_server, "t1")),
                                "dashboard", viewport=(1180, 820))
    table = dashboard.page.get_by_role("table", name="Voortgang per deelnemer")
    rows = table.get_by_role("row")
    await expect(rows).to_have_count(4)  # the header and one row per rostered student
    await expect(table.get_by_role("rowheader")).to_have_text(
        ["Sam Student", "Noor de Vries", "Bram Bakker"])
    sam_row = rows.filter(has_text="Sam Student")
    await expect(sam_row).to_contain_text("offline")
    await expect(sam_row).to_contain_text("nog niet gestart")
    await expect(dashboard.page.get_by_text("De trainer is bij: Oefening")).to_be_visible()

    # Sam opens the lesson (following the trainer to "Oefening"): online, on that screen.
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam",
                          viewport=(390, 844), is_mobile=True, has_touch=True)
    await expect(heading(sam.page)).to_have_text("Oefening")
    await expect(sam_row).to_contain_text("online")
    await expect(sam_row).to_contain_text("Oefening")
    await expect(sam_row).to_contain_text("bij")

    # Sam answers the practice question and looks back two screens: behind, needs help.
    await sam.page.get_by_label("Je kwam vandaag om 9.20 uur binnen.").check()
    await sam.page.get_by_role("button", name="Controleer antwoord").click()
    await expect(sam.page.get_by_text("Goed! Dat is een waarneming.")).to_be_visible()
    await expect(sam_row.get_by_role("cell").nth(6)).to_have_text("1/6")
    await expect(sam_row.get_by_role("cell").nth(7)).to_have_text("100")
    await sam.page.get_by_role("button", name="Vorige").click()
    await sam.page.get_by_role("button", name="Vorige").click()
    await expect(heading(sam.page)).to_have_text("Het model: waarneming, effect, vraag")
    await expect(sam_row).to_contain_text("2 achter")
    await expect(sam_row).to_contain_text("hulp nodig")

    await sam.page.get_by_role("button", name="Hand opsteken").click()
    await expect(sam_row).to_contain_text("hand op")
    help_list = dashboard.page.get_by_role("region", name="Hulp nodig").get_by_role("listitem")
    await expect(help_list).to_have_text(["Sam Student: hand opgestoken, 2 schermen achter"])
    await expect(sam.page.get_by_text("1 van 6 schermen klaar · Score: 100")).to_be_visible()

    # Sortable: by "done", most first; then only the people who need help.
    await table.get_by_role("button", name="Klaar").click()
    await expect(table.get_by_role("columnheader", name="Klaar")).to_have_attribute(
        "aria-sort", "ascending")
    await expect(table.get_by_role("rowheader").first).to_have_text("Sam Student")
    await dashboard.page.get_by_label("Toon alleen wie hulp nodig heeft").check()
    await expect(table.get_by_role("rowheader")).to_have_text(["Sam Student"])
    await dashboard.page.get_by_label("Toon alleen wie hulp nodig heeft").uncheck()
    await expect(table.get_by_role("rowheader")).to_have_count(3)

    await dashboard.screenshot("dashboard-tablet.png")
    await sam.screenshot("student-phone.png")

    # A planner sees the same table without names.
    planner = await open_page(page_url(base, "dashboard", token_for(web_server, "p1")),
                              "planner", viewport=(820, 1180))
    planner_table = planner.page.get_by_role("table", name="Voortgang per deelnemer")
    await expect(planner_table.get_by_role("rowheader")).to_have_text(
        ["Deelnemer 1", "Deelnemer 2", "Deelnemer 3"])
    await expect(planner_table.get_by_role("row").filter(has_text="Deelnemer 1")).to_contain_text(
        "2 achter")
    await expect(planner.page.locator("body")).not_to_contain_text("Sam")
    await planner.screenshot("dashboard-planner.png")
    await teacher.close()
    no_errors(dashboard, sam, planner)


# -- reconnecting after a server restart ----------------------------------------------------------

RUNNER = textwrap.dedent("""
    # `classroom serve`, with the pages mounted should the app not mount them yet.
    import sys

    import classroom.cli as cli
    from classroom.edge.web_pages import web_routes

    build = cli.create_app

    def create_app(settings=None):
        app = build(settings)
        if not any(getattr(route, "path", None) == "/student" for route in app.router.routes):
            app.router.routes.extend(web_routes())
        return app

    cli.create_app = create_app
    sys.exit(cli.main(sys.argv[1:]))
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``classroom serve`` on a fixed port, on Redis, that a test may stop and start again."""

    def __init__(self, port: int, prefix: str, log: Path) -> None:
        self.port = port
        self.prefix = prefix
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("CLASSROOM_", "REDIS_URL"))}
        environment.update({
            "REDIS_URL": REDIS_URL, "CLASSROOM_REDIS_PREFIX": self.prefix,
            "CLASSROOM_TENANTS": json.dumps(TENANTS), "CLASSROOM_SECRET": "test-secret",
            "CLASSROOM_DRAIN_TIMEOUT": "2", "CLASSROOM_CLOSE_TIMEOUT": "1",
            "CLASSROOM_LOG_LEVEL": "warning",
        })
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", RUNNER, "serve", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                stdout=subprocess.DEVNULL, stderr=log, env=environment,
            )
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                assert self.proc.poll() is None, self.log.read_text()
                try:
                    if (await http.get(f"http://127.0.0.1:{self.port}/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("classroom serve did not start")

    async def stop(self) -> None:
        """SIGTERM: the server tells its clients to come back (1012) and drains."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(self.proc.wait, 15)


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the test Redis (db 14), removed afterwards."""
    prefix = f"e2e-{uuid.uuid4().hex[:12]}"
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:  # pragma: no cover - make test starts Redis
        pytest.fail(f"Redis at {REDIS_URL} is not reachable ({exc}); run scripts/ensure-redis.sh")
    yield prefix
    keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_student_page_reconnects_after_a_restart_and_shows_what_it_missed(
    open_page: OpenPage, redis_prefix: str, tmp_path: Path,
) -> None:
    # Node A: a real `classroom serve` process that will be restarted; the student uses it.
    node_a = ServeProcess(free_port(), redis_prefix, tmp_path / "serve.log")
    await node_a.start()
    # Node B: a second node of the same deployment (same Redis), where the trainer is.
    node_b, node_b_task = await serve_app(make_settings(redis_url=REDIS_URL,
                                                        redis_prefix=redis_prefix))
    try:
        teacher = await trainer_member(node_b)
        base_a = f"http://127.0.0.1:{node_a.port}"
        sam = await open_page(page_url(base_a, "student", token_for(node_b, "u1")), "Sam")
        await publish(teacher, {"kind": "screen.navigate", "screen": "model"})
        await expect(heading(sam.page)).to_have_text("Het model: waarneming, effect, vraag")

        # The student's server goes away; the page says it is reconnecting.
        await node_a.stop()
        status = sam.page.get_by_role("status").first
        await expect(status).to_contain_text("Opnieuw verbinden")

        # Meanwhile the lesson goes on elsewhere.
        await publish(teacher, {"kind": "chat", "text": "Welkom terug! Dit heb je gemist."})
        await publish(teacher, {"kind": "screen.navigate", "screen": "example"})

        # The server is back on the same address: the page rejoins with `since`
        # and the server replays exactly the two events it missed.
        await node_a.start()
        await expect(status).to_have_text(
            "Verbinding hersteld. 2 gemiste gebeurtenissen opgehaald.", timeout=20_000)
        # Unlocked, the replayed navigation is offered, not forced.
        prompt = sam.page.get_by_text("De trainer is bij scherm 4: “Een voorbeeld”.")
        await expect(prompt).to_be_visible()
        await sam.page.get_by_role("button", name="Volg de trainer").click()
        await expect(heading(sam.page)).to_have_text("Een voorbeeld")
        chat = sam.page.get_by_role("log")
        await expect(chat).to_contain_text("Welkom terug! Dit heb je gemist.")
        await expect(chat).to_contain_text("Tessa")

        # And it is live again.
        await publish(teacher, {"kind": "chat", "text": "Fijn dat je er weer bent."})
        await expect(sam.page.get_by_role("log")).to_contain_text("Fijn dat je er weer bent.")
        await sam.screenshot("student-reconnected.png")
        # Chromium logs the refused connection attempts while the server was down.
        unexpected = [e for e in sam.errors if "WebSocket connection to" not in e]
        assert unexpected == [], unexpected
        await teacher.close()
    finally:
        await node_a.stop()
        node_b.server.should_exit = True
        await asyncio.wait_for(node_b_task, 15)


# -- pages, headers, languages, accessibility ---------------------------------------------------


async def test_pages_are_served_with_a_strict_policy_and_no_video_without_opentok(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    async with httpx.AsyncClient(base_url=web_server.http_url) as http:
        for path in ("/", "/student", "/trainer", "/dashboard"):
            answer = await http.get(path)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html")
            policy = answer.headers["content-security-policy"]
            assert "script-src 'self' https://static.opentok.com;" in policy
            assert "default-src 'none'" in policy and "'unsafe-inline'" not in policy
            assert answer.headers["x-content-type-options"] == "nosniff"
            # No inline scripts or styles: the policy would block them.
            assert not re.search(r"<script(?![^>]*\bsrc=)", answer.text), path
            assert " style=" not in answer.text and "<style" not in answer.text, path
        script = await http.get("/static/classroom.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        assert "content-security-policy" in script.headers
        assert (await http.get("/static/../classroom/web.py")).status_code == 404

    trainer = await open_page(page_url(web_server.http_url, "trainer",
                                       token_for(web_server, "t1")), "trainer")
    video = trainer.page.get_by_role("region", name="Video")
    await expect(video).to_contain_text("Video is niet beschikbaar voor deze les.")
    await expect(video.get_by_role("button", name="Deelnemen aan video")).to_be_hidden()
    assert await trainer.page.locator("script[src*='opentok']").count() == 0
    # Everything else still works.
    await trainer.page.get_by_role("button", name="Volgende").click()
    await expect(heading(trainer.page)).to_have_text("Welkom")
    no_errors(trainer)


async def test_language_switch_and_refusals_are_shown_in_dutch_or_english(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    base = web_server.http_url
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam")
    assert await sam.page.get_attribute("html", "lang") == "nl"
    await sam.page.get_by_role("button", name="Switch to English").click()
    assert await sam.page.get_attribute("html", "lang") == "en"
    await expect(sam.page.get_by_role("button", name="Raise hand")).to_be_visible()
    await expect(sam.page.get_by_role("status").first).to_have_text("Connected")
    assert sam.page.url.endswith("/student?session=s1&lang=en")
    await sam.page.reload()  # the choice and the token survive a reload; the URL holds no token
    await expect(sam.page.get_by_role("button", name="Raise hand")).to_be_visible()
    await expect(sam.page.get_by_role("status").first).to_have_text("Connected")
    await sam.page.get_by_role("button", name="Schakel naar Nederlands").click()
    await expect(sam.page.get_by_role("button", name="Hand opsteken")).to_be_visible()

    english = await open_page(page_url(base, "trainer", token_for(web_server, "t1"), lang="en"),
                              "trainer", wait_for="Connected")
    await expect(english.page.get_by_role("button", name="Open poll")).to_be_visible()
    await english.screenshot("trainer-en.png")

    nobody = await open_page(f"{base}/student?session=s1", "nobody", wait_for=None)
    await expect(nobody.page.get_by_role("alert")).to_have_text(re.compile("persoonlijke link"))
    wrong = await open_page(page_url(base, "trainer", token_for(web_server, "u1")), "wrong",
                            wait_for=None)
    await expect(wrong.page.get_by_role("alert")).to_have_text(
        "Deze link is niet voor deze pagina bedoeld.")
    forged = await open_page(f"{base}/student?session=s1&lang=en#token=not.a.token", "forged",
                             wait_for=None)
    await expect(forged.page.get_by_role("alert")).to_contain_text("Your link is not valid")
    no_errors(sam, english, nobody, wrong, forged)


async def test_web_routes_answer_get_and_head_only_and_vanish_without_static_dir(
    tmp_path: Path,
) -> None:
    app = Starlette(routes=web_routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://testserver") as http:
        head = await http.head("/dashboard")
        assert head.status_code == 200 and head.content == b""
        assert "frame-ancestors 'none'" in head.headers["content-security-policy"]
        assert (await http.post("/trainer")).status_code == 405
        assert (await http.get("/static/")).status_code == 404
        assert (await http.get("/static/nope.js")).status_code == 404
    assert web_routes(tmp_path / "missing") == []


CONTROLS_WITHOUT_NAMES = """() => {
  const problems = [];
  const controls = document.querySelectorAll(
    'button, input, select, textarea, a[href], [tabindex]:not([tabindex="-1"])');
  for (const el of controls) {
    if (el.closest('[hidden]') || el.getClientRects().length === 0) continue;
    const labelled = (el.getAttribute('aria-labelledby') || '').split(/\\s+/)
      .map((id) => document.getElementById(id)?.textContent || '').join(' ');
    const name = [el.getAttribute('aria-label'), labelled,
      el.id && document.querySelector(`label[for="${el.id}"]`)?.textContent,
      el.closest('label')?.textContent, el.textContent, el.getAttribute('title')]
      .map((text) => (text || '').trim()).find(Boolean);
    if (!name) problems.push(el.outerHTML.slice(0, 100));
  }
  return problems;
}"""

LOW_CONTRAST = """() => {
  const parse = (color) => {
    const parts = (color.match(/rgba?\\(([^)]+)\\)/) || [])[1];
    if (!parts) return null;
    const [r, g, b, a = 1] = parts.split(',').map(Number);
    return { r, g, b, a };
  };
  const channel = (v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el)) continue;
    seen.add(el);
    if (el.closest('[hidden], .sr-only, [aria-hidden="true"]')) continue;
    if (el.getClientRects().length === 0) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color);
    const l1 = luminance(fg);
    const l2 = luminance(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      failures.push(`"${node.textContent.trim().slice(0, 40)}" ${ratio.toFixed(2)}:1`);
    }
  }
  return failures;
}"""


async def test_accessible_basics_and_a_phone_layout(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    await put_roster(web_server)
    teacher = await trainer_member(web_server)
    await publish(teacher, {"kind": "screen.navigate", "screen": "practice"})
    await publish(teacher, {"kind": "poll.open", "poll": "q1", "question": "Klaar?",
                            "options": ["Ja", "Nee"]})
    base = web_server.http_url
    phone = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam",
                            viewport=(390, 844), is_mobile=True, has_touch=True)
    trainer = await open_page(page_url(base, "trainer", token_for(web_server, "t1")), "trainer")
    dashboard = await open_page(page_url(base, "dashboard", token_for(web_server, "t1")),
                                "dashboard", viewport=(820, 1180))
    await expect(heading(phone.page)).to_have_text("Oefening")
    await expect(dashboard.page.get_by_role("rowheader")).to_have_count(3)

    for person in (phone, trainer, dashboard):
        assert await person.page.evaluate(CONTROLS_WITHOUT_NAMES) == [], person.name
        assert await person.page.evaluate(LOW_CONTRAST) == [], person.name
        # Nothing wider than the screen (no sideways scrolling on a phone or tablet).
        assert await person.page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"), person.name

    # Keyboard only: Tab reaches the hand button, its focus is visible, Space presses it.
    page = phone.page
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.id") == "hand":
            break
    else:
        raise AssertionError("the hand button cannot be reached with Tab")
    outline = await page.evaluate(
        "getComputedStyle(document.activeElement).outlineStyle + ' '"
        " + getComputedStyle(document.activeElement).outlineWidth")
    assert outline.startswith("solid") and not outline.endswith(" 0px"), outline
    await page.keyboard.press("Space")
    await expect(page.get_by_role("button", name="Hand omlaag doen")).to_be_focused()
    # The poll answers by keyboard too.
    await page.get_by_role("group", name="Klaar?").get_by_role("button", name="Ja").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Jouw antwoord: Ja")).to_be_visible()
    await phone.screenshot("student-phone-poll.png")
    await teacher.close()
    no_errors(phone, trainer, dashboard)
