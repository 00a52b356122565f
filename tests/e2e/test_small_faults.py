"""The small faults a first trial run found, each seen the way the user saw it."""

from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import RunningServer
from tests.e2e.conftest import OpenPage, page_url, put_roster, token_for


async def test_a_planner_is_listed_as_a_planner_not_as_a_student(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    base = web_server.http_url
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam")
    trainer = await open_page(page_url(base, "trainer", token_for(web_server, "t1")), "trainer")
    await open_page(page_url(base, "dashboard", token_for(web_server, "p1")), "planner")
    for person in (sam, trainer):
        present = person.page.get_by_role("region", name="Aanwezig")
        planner = present.get_by_role("listitem").filter(has_text="een planner")
        await expect(planner).to_have_count(1)
        await expect(planner).to_contain_text("planner")
        await expect(planner).not_to_contain_text("deelnemer")
    assert sam.errors == [] and trainer.errors == []


async def test_a_page_without_a_link_says_so_and_shows_no_live_controls(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    for page in ("student", "trainer"):
        person = await open_page(f"{web_server.http_url}/{page}", page, wait_for=None)
        await expect(person.page.get_by_role("alert")).to_contain_text("persoonlijke link")
        await expect(person.page.locator("#status")).to_have_text("Niet verbonden.")
        await expect(person.page.get_by_role("button", name="Hand opsteken")).to_have_count(0)
        await expect(person.page.get_by_role("button", name="Volgende")).to_be_hidden()
        await expect(person.page.get_by_role("textbox")).to_have_count(0)
        assert person.errors == []


async def test_a_phone_trainer_is_not_told_about_a_mouse_and_english_says_on_track(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    await put_roster(web_server)
    base = web_server.http_url
    phone = await open_page(page_url(base, "trainer", token_for(web_server, "t1")), "trainer",
                            viewport=(390, 844), is_mobile=True, has_touch=True)
    await expect(phone.page.locator("body")).not_to_contain_text("muis")
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam")
    await phone.page.get_by_role("button", name="Ga naar Welkom").click()
    await expect(sam.page.get_by_role("heading", level=1)).to_have_text("Welkom")
    dashboard = await open_page(
        page_url(base, "dashboard", token_for(web_server, "t1"), lang="en"), "dashboard",
        wait_for="Connected")
    row = dashboard.page.get_by_role("row").filter(has_text="Sam Student")
    await expect(row).to_contain_text("on track")
    await expect(row).not_to_contain_text("level")
    assert phone.errors == [] and dashboard.errors == []


async def test_the_trainer_ends_the_lesson_after_confirming(
    web_server: RunningServer, open_page: OpenPage,
) -> None:
    base = web_server.http_url
    trainer = await open_page(page_url(base, "trainer", token_for(web_server, "t1")), "trainer")
    sam = await open_page(page_url(base, "student", token_for(web_server, "u1")), "Sam",
                          viewport=(390, 844))
    await trainer.page.get_by_role("button", name="Les beëindigen").click()
    dialog = trainer.page.get_by_role("dialog", name="Les beëindigen?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="Annuleren")).to_be_focused()
    await dialog.get_by_role("button", name="Annuleren").click()
    await expect(dialog).to_be_hidden()
    await expect(sam.page.get_by_role("alert")).to_be_hidden()  # nothing happened

    await trainer.page.get_by_role("button", name="Les beëindigen").click()
    await dialog.get_by_role("button", name="Ja, les beëindigen").click()
    for person in (sam, trainer):
        await expect(person.page.get_by_role("alert")).to_have_text("Deze les is afgelopen.")
    await expect(sam.page.get_by_role("button", name="Hand opsteken")).to_be_disabled()
    assert trainer.errors == []
