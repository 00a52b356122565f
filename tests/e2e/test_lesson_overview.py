"""The rest of a real lesson in Chromium: the customer's own screens in a frame, the
trainer's overview (who answered, hidden results, the timer), private questions and
removed messages, and what students may mark."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import expect
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.conftest import TENANTS, RunningServer
from tests.e2e.conftest import (
    ACME_API,
    PEOPLE,
    OpenPage,
    Person,
    make_settings,
    page_url,
    put_roster,
    serve_app,
    token_for,
)

CONSOLE = (1280, 800)
PHONE = (390, 844)
CONTENT = "<!doctype html><title>Werkplaats</title><h1>Veilig werken in de werkplaats</h1>"


def no_errors(*people: Person) -> None:
    for person in people:
        assert person.errors == [], f"{person.name}: {person.errors}"


@pytest.fixture
async def content_site() -> AsyncIterator[str]:
    """The customer's own content server: another origin on loopback."""
    import uvicorn

    app = Starlette(routes=[Route("/werkplaats", lambda request: HTMLResponse(CONTENT))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    await asyncio.wait_for(task, 10)


@pytest.fixture
async def framed_server(content_site: str) -> AsyncIterator[RunningServer]:
    """The classroom server, with acme allowed to frame the content site's pages."""
    tenants = json.loads(json.dumps(TENANTS))
    tenants["acme"]["frame_origins"] = [content_site]
    running, task = await serve_app(make_settings(tenants_raw=json.dumps(tenants)))
    yield running
    running.server.should_exit = True
    await asyncio.wait_for(task, 15)


def url(server: RunningServer, page: str, sub: str, **extra: Any) -> str:
    """A page link with the tenant named, as the demo prints it (frame-src needs it)."""
    return page_url(server.http_url, page, token_for(server, sub), **extra).replace(
        "#", "&tenant=acme#")


async def test_the_customers_own_screens_show_in_a_frame_with_their_titles(
    framed_server: RunningServer, content_site: str, open_page: OpenPage,
) -> None:
    roster = {
        "title": "Veilig werken", "trainers": ["t1"],
        "screens": [{"id": "intro", "title": "Welkom bij Acme"},
                    {"id": "werkplaats", "title": "De werkplaats",
                     "url": f"{content_site}/werkplaats"}],
        "students": [{"sub": "u1", "name": PEOPLE["u1"][1], "email": PEOPLE["u1"][2]}],
    }
    async with httpx.AsyncClient(base_url=framed_server.http_url) as http:
        answer = await http.put("/api/v1/sessions/s1", json=roster, headers=ACME_API)
        assert answer.status_code == 200, answer.text
    trainer = await open_page(url(framed_server, "trainer", "t1"), "trainer", viewport=CONSOLE)
    sam = await open_page(url(framed_server, "student", "u1"), "Sam", viewport=PHONE)
    screens = trainer.page.get_by_role("region", name="Schermen")
    await expect(screens.get_by_role("button")).to_have_count(2)
    await screens.get_by_role("button", name="Ga naar De werkplaats").click()

    await expect(sam.page.get_by_role("heading", level=1)).to_have_text("De werkplaats")
    frame = sam.page.frame_locator("#screen-frame")
    await expect(frame.get_by_role("heading")).to_have_text("Veilig werken in de werkplaats")
    await expect(sam.page.locator("#screen-frame")).to_have_attribute(
        "sandbox", re.compile("allow-scripts"))
    await expect(sam.page.get_by_text("Scherm 2 van 2")).to_be_visible()
    await sam.screenshot("lesson-customer-screen-390.png")

    # The progress table names the screen by its title too.
    dashboard = await open_page(url(framed_server, "dashboard", "t1"), "dashboard")
    row = dashboard.page.get_by_role("row").filter(has_text="Sam Student")
    await expect(row).to_contain_text("De werkplaats")
    no_errors(trainer, sam, dashboard)


async def test_the_trainers_overview_hidden_results_timer_and_a_reload(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    await put_roster(web_server)
    trainer = await open_page(url(web_server, "trainer", "t1"), "trainer", viewport=CONSOLE)
    sam = await open_page(url(web_server, "student", "u1"), "Sam", viewport=PHONE)
    noor = await open_page(url(web_server, "student", "u2"), "Noor")

    # A poll whose results the students see only when the trainer shows them.
    poll = trainer.page.get_by_role("region", name="Peiling")
    await poll.get_by_label("Uitslag verbergen voor deelnemers tot ik die toon").check()
    await poll.get_by_role("button", name="Peiling openen").click()
    await sam.page.get_by_role("region", name="Peiling").get_by_role("button", name="Ja").click()
    waiting = poll.get_by_role("list", name="Nog niet geantwoord")
    await expect(waiting).to_have_text(re.compile("Noor de Vries"))
    await expect(waiting).not_to_contain_text("Sam Student")
    answered = poll.get_by_text("1 van 2 aanwezige deelnemers hebben geantwoord.")
    await expect(answered).to_be_visible()
    for student in (sam, noor):
        await expect(student.page.get_by_text(
            "De uitslag is nog verborgen. De trainer laat die zien.")).to_be_visible()
    await poll.get_by_role("button", name="Uitslag aan deelnemers tonen").click()
    for student in (sam, noor):
        tally = student.page.get_by_role("region", name="Peiling").get_by_role("list")
        await expect(tally.get_by_role("listitem").first).to_contain_text("1 stem")
    await poll.get_by_role("button", name="Peiling sluiten").click()

    # A closed poll's results survive a reload.
    await noor.page.reload()
    await noor.page.locator("#status").filter(has_text="Verbonden").wait_for()
    closed = noor.page.get_by_role("region", name="Peiling")
    await expect(closed).to_contain_text("Deze peiling is gesloten.")
    await expect(closed.get_by_role("listitem").first).to_contain_text("1 stem")

    # A lesson timer everyone sees.
    await trainer.page.get_by_label("Minuten").fill("2")
    await trainer.page.get_by_role("button", name="Timer starten").click()
    for person in (trainer, sam, noor):
        await expect(person.page.locator("#timer")).to_have_text(
            re.compile(r"⏱ Nog (1:5\d|2:00)"))
    await trainer.page.get_by_role("button", name="Timer stoppen").click()
    await expect(sam.page.locator("#timer")).to_be_hidden()
    no_errors(trainer, sam, noor)


async def test_private_questions_and_removed_messages(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    trainer = await open_page(url(web_server, "trainer", "t1"), "trainer", viewport=CONSOLE)
    sam = await open_page(url(web_server, "student", "u1"), "Sam", viewport=PHONE)
    noor = await open_page(url(web_server, "student", "u2"), "Noor")

    # Sam asks the trainer privately: only the trainer (and Sam) see it.
    await sam.page.get_by_label("Alleen aan de trainer (privévraag)").check()
    await sam.page.get_by_label("Bericht", exact=True).fill("Ik snap stap 2 niet")
    await sam.page.get_by_label("Bericht", exact=True).press("Enter")
    log = trainer.page.get_by_role("log")
    await expect(log).to_contain_text("Ik snap stap 2 niet")
    await expect(log.locator(".chat-item.private")).to_contain_text("privé")
    await expect(trainer.page.locator("#announcer")).to_have_text("Privévraag van Sam Student.")
    await expect(sam.page.get_by_role("log")).to_contain_text("Ik snap stap 2 niet")

    # Noor says something in the open chat; the trainer removes it.
    await noor.page.get_by_label("Bericht", exact=True).fill("oeps, verkeerde chat")
    await noor.page.get_by_label("Bericht", exact=True).press("Enter")
    await expect(log).to_contain_text("oeps, verkeerde chat")
    await log.get_by_role("button", name="Bericht van Noor de Vries verwijderen").click()
    for person in (trainer, sam, noor):
        chat = person.page.get_by_role("log")
        await expect(chat).to_contain_text("Dit bericht is verwijderd door de trainer.")
        await expect(chat).not_to_contain_text("oeps, verkeerde chat")
    await expect(noor.page.locator("body")).not_to_contain_text("Ik snap stap 2 niet")

    # After a reload (history) the removal and the privacy hold.
    await noor.page.reload()
    await noor.page.locator("#status").filter(has_text="Verbonden").wait_for()
    chat = noor.page.get_by_role("log")
    await expect(chat).to_contain_text("Dit bericht is verwijderd door de trainer.")
    await expect(noor.page.locator("body")).not_to_contain_text("oeps, verkeerde chat")
    await expect(noor.page.locator("body")).not_to_contain_text("Ik snap stap 2 niet")
    no_errors(trainer, sam, noor)


async def test_what_students_may_mark_and_clearing_marks(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    await put_roster(web_server)
    trainer = await open_page(url(web_server, "trainer", "t1"), "trainer", viewport=CONSOLE)
    sam = await open_page(url(web_server, "student", "u1"), "Sam")
    noor = await open_page(url(web_server, "student", "u2"), "Noor", viewport=PHONE)
    await trainer.page.get_by_role("button", name="Ga naar Leerdoelen").click()
    await expect(sam.page.get_by_role("heading", level=1)).to_have_text("Leerdoelen")

    async def circle(person: Person, x: int, y: int) -> None:
        await person.page.get_by_role("radio", name="Cirkel").check()
        await person.page.locator("#stage").click(position={"x": x, "y": y})

    await circle(sam, 100, 100)
    await circle(sam, 140, 120)
    await circle(noor, 60, 60)
    await expect(trainer.page.locator("#overlay .annotation")).to_have_count(3)

    # Sam clears his own marks; Noor's stays.
    await sam.page.get_by_role("button", name="Mijn markeringen wissen").click()
    await expect(trainer.page.locator("#overlay .annotation")).to_have_count(1)
    # The trainer clears Noor's.
    await trainer.page.get_by_label("Markeringen van één persoon op dit scherm").select_option(
        label="Noor de Vries")
    await trainer.page.get_by_role("button", name="Wissen", exact=True).click()
    for person in (trainer, sam, noor):
        await expect(person.page.locator("#overlay .annotation")).to_have_count(0)

    # The trainer switches student marks off: the tools go, the server refuses too.
    await trainer.page.get_by_label("Deelnemers mogen markeren").uncheck()
    for student in (sam, noor):
        await expect(student.page.get_by_text(
            "De trainer heeft markeren voor deelnemers uitgezet.").first).to_be_visible()
        await expect(student.page.get_by_role("radio", name="Cirkel")).to_have_count(0)

    # Student pointers are off until the trainer shows them; then names go with them.
    await sam.page.locator("#stage").hover(position={"x": 200, "y": 100})
    await asyncio.sleep(0.3)
    await expect(trainer.page.locator("#overlay .student-pointer")).to_have_count(0)
    await trainer.page.get_by_label("Deelnemers mogen markeren").check()
    await trainer.page.get_by_label("Aanwijzers van deelnemers tonen").check()
    await expect(sam.page.get_by_text("Waar je op het scherm wijst")).to_be_visible()
    await sam.page.locator("#stage").hover(position={"x": 220, "y": 110})
    await sam.page.locator("#stage").hover(position={"x": 240, "y": 120})
    pointer = trainer.page.locator("#overlay .student-pointer")
    await expect(pointer).to_have_count(1)
    await expect(pointer).to_contain_text("Sam Student")
    await expect(noor.page.locator("#overlay .student-pointer")).to_contain_text("Sam")
    await expect(noor.page.locator("body")).not_to_contain_text("Sam Student")
    no_errors(trainer, sam, noor)
