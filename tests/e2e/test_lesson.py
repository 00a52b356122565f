"""A lesson as a teacher runs it, in Chromium: a trainer at 1280x800 and students
on a 390x844 phone and a 1920x1080 screen, each in a browser context of their
own, checking what each screen shows.

Marks are checked where a person would look at them: a circle put on a word on
the console must sit on that same word on the phone and on the wide screen.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from tests.conftest import RunningServer
from tests.e2e.conftest import OpenPage, Person, axe_violations, page_url, put_roster, token_for

CONSOLE = (1280, 800)
PHONE = (390, 844)
WIDE = (1920, 1080)

WORD_BOX = """(word) => {
  const node = document.querySelector("#screen-body").firstChild;
  const at = node.textContent.indexOf(word);
  const range = document.createRange();
  range.setStart(node, at);
  range.setEnd(node, at + word.length);
  const box = range.getBoundingClientRect();
  return {x: box.x, y: box.y, w: box.width, h: box.height};
}"""
"""Where a word of the screen's text is on the page, as the person sees it."""

MARK_CENTRES = """() => [...document.querySelectorAll("#overlay .annotation circle")].map((c) => {
  const box = c.getBoundingClientRect();
  return {x: box.x + box.width / 2, y: box.y + box.height / 2};
})"""


def no_errors(*people: Person) -> None:
    for person in people:
        assert person.errors == [], f"{person.name}: {person.errors}"


async def word_box(page: Page, word: str) -> dict[str, float]:
    await page.locator("#stage").scroll_into_view_if_needed()
    box: dict[str, float] = await page.evaluate(WORD_BOX, word)
    assert box["w"] > 0, f"{word!r} is not on the screen"
    return box


def inside(point: dict[str, float], box: dict[str, float]) -> bool:
    return (box["x"] <= point["x"] <= box["x"] + box["w"]
            and box["y"] <= point["y"] <= box["y"] + box["h"])


async def lesson(server: RunningServer, open_page: OpenPage, *, query: str = "",
                 ) -> tuple[Person, Person, Person]:
    """The roster, then a trainer at the console, Sam on a phone and Noor on a wide screen."""
    await put_roster(server)
    base = server.http_url

    def url(page: str, sub: str) -> str:
        return page_url(base, page, token_for(server, sub)).replace("#", f"{query}#")

    trainer = await open_page(url("trainer", "t1"), "trainer", viewport=CONSOLE)
    sam = await open_page(url("student", "u1"), "Sam", viewport=PHONE,
                          is_mobile=True, has_touch=True)
    noor = await open_page(url("student", "u2"), "Noor", viewport=WIDE)
    return trainer, sam, noor


def heading(page: Page) -> Any:
    return page.get_by_role("heading", level=1)


async def test_marks_stay_on_the_words_they_were_put_on_at_every_size(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    trainer, sam, noor = await lesson(web_server, open_page)
    await trainer.page.get_by_role("button", name="Ga naar Een voorbeeld").click()
    for person in (sam, noor):
        await expect(heading(person.page)).to_have_text("Een voorbeeld")

    # The trainer circles the word "deadline" on the console.
    await trainer.page.get_by_role("radio", name="Cirkel").check()
    target = await word_box(trainer.page, "deadline")
    await trainer.page.mouse.click(target["x"] + target["w"] / 2, target["y"] + target["h"] / 2)

    # On the phone and on the wide screen the circle sits on that same word,
    # though the text is drawn more than twice as large on one as on the other.
    for person in (sam, noor, trainer):
        await expect(person.page.locator("#overlay .annotation")).to_have_count(1)
        centre = (await person.page.evaluate(MARK_CENTRES))[0]
        word = await word_box(person.page, "deadline")
        assert inside(centre, word), (person.name, centre, word)
    phone_word = await word_box(sam.page, "deadline")
    wide_word = await word_box(noor.page, "deadline")
    assert wide_word["w"] > 2 * phone_word["w"]

    # Noor draws a blue line under "rapport" with the mouse.
    await noor.page.get_by_role("radio", name="Tekenen").check()
    await noor.page.locator("label.colour-choice", has=noor.page.get_by_role(
        "radio", name="Blauw")).click()
    word = await word_box(noor.page, "rapport")
    y = word["y"] + word["h"]
    await noor.page.mouse.move(word["x"], y)
    await noor.page.mouse.down()
    for step in range(1, 21):
        await noor.page.mouse.move(word["x"] + word["w"] * step / 20, y + (step % 2))
    await noor.page.mouse.up()
    line = sam.page.locator("#overlay .annotation polyline")
    await expect(line).to_have_count(1)
    await expect(line).to_have_attribute("stroke", "#0b57b0")
    # The line was simplified: 21 mouse positions, fewer points on the wire.
    points = (await line.get_attribute("points") or "").split()
    assert 2 <= len(points) < 21, points

    # Sam, on the phone, puts a text note by tapping.
    await sam.page.get_by_role("radio", name="Tekst").check()
    await sam.page.get_by_label("Tekst van de notitie").fill("Wat is de deadline?")
    await sam.page.locator("#stage").tap(position={"x": 60, "y": 150})
    for person in (trainer, noor):
        await expect(person.page.locator("#overlay .mark-text")).to_have_text(
            "Wat is de deadline?")
        await expect(person.page.get_by_text("3 markeringen op dit scherm.")).to_be_attached()

    # Each mark names its author as the viewer may see them.
    sam_note = trainer.page.locator("#overlay .annotation", has_text="Wat is de deadline?")
    await expect(sam_note.locator("title")).to_have_text("Sam Student")
    noor_note = noor.page.locator("#overlay .annotation", has_text="Wat is de deadline?")
    await expect(noor_note.locator("title")).to_have_text("Sam")

    await trainer.screenshot("lesson-marks-trainer-1280.png")
    await sam.screenshot("lesson-marks-student-390.png")
    await noor.screenshot("lesson-marks-student-1920.png")

    # Sam takes the note back: it is gone everywhere; the others' marks stay.
    await sam.page.get_by_role("button", name="Laatste markering weghalen").click()
    for person in (trainer, noor, sam):
        await expect(person.page.locator("#overlay .mark-text")).to_have_count(0)
        await expect(person.page.locator("#overlay .annotation")).to_have_count(2)
    await expect(sam.page.get_by_role("button", name="Laatste markering weghalen")).to_be_disabled()
    for page in (sam.page, noor.page):
        await expect(page.locator("body")).not_to_contain_text("Noor de Vries")
        await expect(page.locator("body")).not_to_contain_text("@example.nl")
    no_errors(trainer, sam, noor)


async def test_navigation_offers_the_trainers_screen_and_the_trainer_sees_who_is_where(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    trainer, sam, noor = await lesson(web_server, open_page)
    await trainer.page.get_by_role("button", name="Ga naar Leerdoelen").click()
    for person in (sam, noor):
        await expect(heading(person.page)).to_have_text("Leerdoelen")

    # Sam browses ahead; the trainer sees one student on each of the two screens.
    await sam.page.get_by_role("button", name="Volgende").click()
    await expect(heading(sam.page)).to_have_text("Het model: waarneming, effect, vraag")
    screens = trainer.page.get_by_role("region", name="Schermen")
    model = screens.get_by_role("button", name=(
        "Ga naar Het model: waarneming, effect, vraag (1 deelnemer hier: Sam Student)"))
    await expect(model).to_be_visible()
    await expect(model).to_have_attribute("title", "Sam Student")
    await expect(screens.get_by_role(
        "button", name="Ga naar Leerdoelen (1 deelnemer hier: Noor de Vries)")).to_be_visible()

    # Unlocked, the trainer's navigation is offered, not forced.
    await trainer.page.get_by_role("button", name="Ga naar Een voorbeeld").click()
    for person, stays in ((sam, "Het model: waarneming, effect, vraag"), (noor, "Leerdoelen")):
        await expect(person.page.get_by_text(
            "De trainer is bij scherm 4: “Een voorbeeld”.")).to_be_visible()
        await expect(heading(person.page)).to_have_text(stays)
    await noor.page.get_by_role("button", name="Volg de trainer").click()
    await expect(heading(noor.page)).to_have_text("Een voorbeeld")
    await expect(noor.page.get_by_text("Je volgt de trainer.")).to_be_visible()

    # Locked, everyone follows; the lock button says what it does next.
    await trainer.page.get_by_role("button", name="Schermen vergrendelen").click()
    await expect(heading(sam.page)).to_have_text("Een voorbeeld")
    await expect(sam.page.get_by_role("button", name="Volg de trainer")).to_be_hidden()
    unlock = trainer.page.get_by_role("button", name="Schermen ontgrendelen")
    await expect(unlock).to_be_visible()
    await unlock.click()
    await expect(trainer.page.get_by_role("button", name="Schermen vergrendelen")).to_be_visible()

    # The screen list is in view at 1280x800 without scrolling.
    last = screens.get_by_role("button", name=re.compile("^Ga naar Afronding"))
    box = await last.bounding_box()
    assert box is not None and box["y"] + box["height"] <= CONSOLE[1], box
    no_errors(trainer, sam, noor)


async def test_the_pages_pass_axe_at_wcag_aa_and_announce_hands_and_chat(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    trainer, sam, noor = await lesson(web_server, open_page)
    base = web_server.http_url
    dashboards = [
        await open_page(page_url(base, "dashboard", token_for(web_server, "t1")), "dash",
                        viewport=size)
        for size in (PHONE, CONSOLE)
    ]
    await trainer.page.get_by_role("button", name="Ga naar Oefening").click()
    await expect(heading(sam.page)).to_have_text("Oefening")
    await trainer.page.get_by_role("button", name="Peiling openen").click()
    await expect(sam.page.get_by_role("region", name="Peiling")).to_be_visible()

    # A raised hand and a chat message are announced to screen readers.
    await sam.page.get_by_role("button", name="Hand opsteken").click()
    await expect(trainer.page.locator("#announcer")).to_have_text("Sam Student stak een hand op.")
    await expect(trainer.page.locator("#announcer")).to_have_attribute("aria-live", "polite")
    await noor.page.get_by_label("Bericht", exact=True).fill("Ik ben er ook")
    await noor.page.get_by_label("Bericht", exact=True).press("Enter")
    log = sam.page.get_by_role("log", name="Chatberichten")
    await expect(log).to_contain_text("Ik ben er ook")  # role=log: a polite live region

    small_trainer = await open_page(
        page_url(base, "trainer", token_for(web_server, "t1")), "trainer-phone", viewport=PHONE)
    wide_student = await open_page(
        page_url(base, "student", token_for(web_server, "u3")), "Bram", viewport=CONSOLE)
    for person, name in ((trainer, "trainer-1280"), (small_trainer, "trainer-390"),
                         (sam, "student-390"), (wide_student, "student-1280"),
                         (dashboards[0], "dashboard-390"), (dashboards[1], "dashboard-1280")):
        await person.screenshot(f"axe-{name}.png")
        violations = await axe_violations(person.page)
        assert violations == [], (name, violations)
        # Nothing wider than the screen (no sideways scrolling).
        assert await person.page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"), name
    # The phone's dashboard caption spans the width instead of a narrow column.
    caption = await dashboards[0].page.locator("caption").bounding_box()
    assert caption is not None and caption["width"] > 0.8 * (PHONE[0] - 40), caption
    no_errors(trainer, sam, noor, small_trainer, wide_student, *dashboards)


async def test_marking_with_the_keyboard_alone(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    trainer, sam, noor = await lesson(web_server, open_page)
    await trainer.page.get_by_role("button", name="Ga naar Welkom").click()
    await expect(heading(noor.page)).to_have_text("Welkom")
    page = noor.page
    # Tab to the tool choice, pick the circle with the arrow keys (radio buttons).
    for _ in range(60):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.name") == "mark-tool":
            break
    else:
        raise AssertionError("the marking tools cannot be reached with Tab")
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("radio", name="Cirkel")).to_be_checked()
    # The stage takes focus now (it comes before the tools), and Enter marks its centre.
    for _ in range(10):
        await page.keyboard.press("Shift+Tab")
        if await page.evaluate("document.activeElement.id") == "stage":
            break
    else:
        raise AssertionError("the stage cannot be reached with the keyboard")
    await page.keyboard.press("Enter")
    await expect(trainer.page.locator("#overlay .annotation")).to_have_count(1)
    await expect(page.get_by_text("1 markering op dit scherm.")).to_be_attached()
    no_errors(trainer, sam, noor)
