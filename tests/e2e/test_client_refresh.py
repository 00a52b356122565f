"""``static/classroom.js`` refreshes its token in place, in a real browser, before it expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser

from auth.tokens import issue_token
from tests.client import Client
from tests.conftest import RunningServer
from tests.e2e.conftest import make_settings, serve_app

START_CLIENT = """
async ([token, fresh]) => {
  const { ClassroomClient } = await import("/static/classroom.js");
  window.log = [];
  window.texts = [];
  window.asked = 0;
  const client = new ClassroomClient({
    token,
    getToken: async () => { window.asked += 1; return fresh; },
  });
  client.on("status", ({ state }) => window.log.push("status:" + state));
  client.on("refreshed", (reply) => window.log.push("refreshed:" + reply.me.role));
  client.on("event", (frame) => window.texts.push(frame.event.text));
  await client.connect();
  await client.join("s1");
  window.client = client;
}
"""


@pytest.fixture
async def refreshing_server() -> AsyncIterator[RunningServer]:
    """A server that asks for a refresh 1.5 s before a token's ``exp``."""
    running, task = await serve_app(make_settings(refresh_before=1.5))
    yield running
    running.server.should_exit = True
    await asyncio.wait_for(task, 15)


def student_token(server: RunningServer, ttl: float) -> str:
    return issue_token(server.tenant("acme"), sub="u1", role="student", sessions=["s1"],
                       ttl=ttl, name="Sam Student")


async def test_the_client_refreshes_before_expiry_and_never_reconnects(
    refreshing_server: RunningServer, browser: Browser
) -> None:
    server = refreshing_server
    page = await (await browser.new_context()).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{server.http_url}/")
    await page.evaluate(START_CLIENT, [student_token(server, 3.0), student_token(server, 600)])

    trainer = await Client.open(server.ws_url)
    await trainer.connect(issue_token(server.tenant("acme"), sub="t1", role="trainer",
                                      sessions=["s1"], ttl=600))
    await trainer.request("join", session="s1")
    await asyncio.sleep(4.0)  # past the first token's exp (and the server's leeway, 0)
    reply = await trainer.request("publish", session="s1",
                                  event={"kind": "chat", "text": "na de verversing"})
    assert reply["type"] == "published", reply
    await page.wait_for_function("window.texts.includes('na de verversing')", timeout=5000)

    log = await page.evaluate("window.log")
    assert "refreshed:student" in log, log
    assert log.count("status:open") == 1 and "status:reconnecting" not in log, log
    assert await page.evaluate("window.asked") == 1
    assert errors == []
    await trainer.close()
