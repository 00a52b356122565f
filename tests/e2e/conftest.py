"""Browser fixtures: Debian's Chromium driven by Playwright, against a real server.

Playwright's own browser downloads are never used (``playwright install`` is not
run and cannot be, offline): the tests launch ``/usr/bin/chromium`` through
``executable_path`` (``CLASSROOM_CHROMIUM`` names another binary). When it is
missing, ``scripts/ensure-chromium.sh`` tries to install Debian's package once;
if that fails too, the tests are skipped with the reason.

Each test gets its own browser (Playwright gives every launch a fresh,
temporary user-data-dir, removed when the browser closes) and one browser
context per simulated person, so cookies, storage and connections are
separate, as on separate devices.

Screenshots go to ``artifacts/screenshots/`` (ignored by git) for review.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from auth.tokens import issue_token
from classroom.app import create_app
from classroom.config import Settings
from classroom.edge.server import build_server
from classroom.edge.web_pages import web_routes
from tests.conftest import TENANTS, RunningServer
from tests.wire_contract import tap_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CLASSROOM_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = REPO / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ACME_API = {"Authorization": "Bearer acme-key"}
SCREENS = ["intro", "goals", "model", "example", "practice", "wrap-up"]
"""The demo course's screen ids (static/course.js), for rosters that compute 'behind'."""

PEOPLE = {
    "t1": ("trainer", "Tessa Trainer", "tessa@example.nl"),
    "u1": ("student", "Sam Student", "sam@example.nl"),
    "u2": ("student", "Noor de Vries", "noor@example.nl"),
    "u3": ("student", "Bram Bakker", "bram@example.nl"),
    "p1": ("planner", "Pim Planner", "pim@example.nl"),
}


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """``/usr/bin/chromium``, installed on demand; skip (with the reason) if impossible."""
    if not CHROMIUM.exists():
        subprocess.run(["sh", str(REPO / "scripts" / "ensure-chromium.sh")],
                       check=False, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and scripts/ensure-chromium.sh could not provide it "
                    "(it installs Debian's chromium package: needs root, apt-get and a network)")
    return str(CHROMIUM)


@pytest.fixture
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    """A headless Chromium of this test's own."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS,
        )
        try:
            yield launched
        finally:
            await launched.close()


async def serve_app(settings: Settings) -> tuple[RunningServer, asyncio.Task[None]]:
    """Start the app on a free port, as tests/conftest.py does, with the pages mounted."""
    app = create_app(settings)
    if not any(getattr(route, "path", None) == "/student" for route in app.router.routes):
        app.router.routes.extend(web_routes())  # until the app mounts them itself
    server = build_server(app, settings, "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningServer(settings, port, app, server), task


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "tenants_raw": json.dumps(TENANTS), "secret": "test-secret",
        "close_timeout": 1.0, "drain_timeout": 2.0, "progress_push_interval": 0.2,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(autouse=True)
def _wire_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every frame between the browsers and the server is checked against /asyncapi.json."""
    tap_server(monkeypatch)


@pytest.fixture
async def web_server() -> AsyncIterator[RunningServer]:
    """The classroom server with the web client, in this process."""
    running, task = await serve_app(make_settings())
    yield running
    running.server.should_exit = True
    await asyncio.wait_for(task, 15)


@dataclass
class Person:
    """One simulated person: a browser context of their own and its page."""

    name: str
    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    async def screenshot(self, filename: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / filename
        await self.page.screenshot(path=str(path), full_page=True)
        return path


def token_for(server: RunningServer, sub: str, session: str = "s1") -> str:
    role, name, email = PEOPLE[sub]
    return issue_token(server.tenant("acme"), sub=sub, role=role, sessions=[session], ttl=600,
                       name=name, email=email)


def page_url(base: str, page: str, token: str, session: str = "s1", lang: str | None = None) -> str:
    """A link as the demo banner prints it: the token only in the fragment."""
    query = f"session={session}" + (f"&lang={lang}" if lang else "")
    return f"{base}/{page}?{query}#token={token}"


OpenPage = Callable[..., Awaitable[Person]]


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """Open a page for a person in a fresh browser context; contexts close after the test."""
    people: list[Person] = []

    async def open_(url: str, name: str, *, viewport: tuple[int, int] = (1280, 860),
                    wait_for: str | None = "Verbonden", **context_options: Any) -> Person:
        context = await browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]}, **context_options,
        )
        page = await context.new_page()
        person = Person(name, context, page)

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                person.errors.append(message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda error: person.errors.append(f"page error: {error}"))
        await page.goto(url)
        if wait_for:
            await page.locator("#status").filter(has_text=wait_for).wait_for()
        people.append(person)
        return person

    yield open_
    for person in people:
        await person.context.close()


async def put_roster(server: RunningServer, session: str = "s1",
                     students: tuple[str, ...] = ("u1", "u2", "u3")) -> None:
    """The tenant's back end registers the cohort (and the course's screens)."""
    roster = {
        "title": "Feedback geven", "trainers": ["t1"], "screens": SCREENS,
        "students": [{"sub": sub, "name": PEOPLE[sub][1], "email": PEOPLE[sub][2]}
                     for sub in students],
    }
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        answer = await http.put(f"/api/v1/sessions/{session}", json=roster, headers=ACME_API)
        assert answer.status_code == 200, answer.text


AXE = REPO / "tests" / "e2e" / "node_modules" / "axe-core" / "axe.min.js"
"""axe-core from npm (``make browser-test-deps``), at the version package-lock.json pins."""
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """What axe-core finds against WCAG 2.1 A and AA on the page as it is now.

    The script is evaluated through the DevTools protocol, not added as a
    ``<script>``: the pages' policy allows no inline script, and must not be
    loosened for a test.
    """
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make browser-test-deps` (npm ci in tests/e2e)")
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result: list[dict[str, Any]] = await page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: "tag", values: tags}}).then((r) =>
            r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))})))""",
        WCAG_AA,
    )
    return result
