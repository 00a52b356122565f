"""The ``classroom serve`` command as an operator runs it: a real process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.client import Client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(port: int, **env: str) -> subprocess.Popen[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("CLASSROOM_", "REDIS_URL"))}
    environment.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "classroom.cli", "serve", "--host", "127.0.0.1",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
    )


async def wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    for _ in range(200):
        assert proc.poll() is None, proc.communicate()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("server did not start")


def read_banner(proc: subprocess.Popen[str], links: list[str] | None = None,
                info: dict[str, str] | None = None) -> dict[str, str]:
    assert proc.stdout is not None
    tokens: dict[str, str] = {}
    for line in proc.stdout:
        key = re.match(r"\s+server API key\s+:\s+(\S+)$", line)
        if key and info is not None:
            info["api_key"] = key.group(1)
        link = re.match(r"\s+(?:trainer|student|planner)\s+(http://\S+)$", line)
        if link and links is not None:
            links.append(link.group(1))
        match = re.match(r"\s+(trainer|student|planner)\s+(\S+)\s+(\S+)$", line)
        if match:
            tokens[match.group(2)] = match.group(3)
        if len(tokens) == 4:
            return tokens
    raise AssertionError("no demo tokens printed")


async def test_demo_tokens_printed_at_start_work_and_sigterm_drains() -> None:
    port = free_port()
    proc = spawn(port)
    try:
        links: list[str] = []
        info: dict[str, str] = {}
        tokens = read_banner(proc, links, info)
        assert set(tokens) == {"demo-trainer", "demo-student-1", "demo-student-2",
                               "demo-planner"}
        await wait_listening(port, proc)
        pages = sorted(link.split("?")[0].rsplit("/", 1)[1] for link in links)
        assert pages == ["dashboard", "student", "student", "trainer"]
        assert all(f"#token={tokens['demo-trainer']}" in link for link in links[:1])
        assert all("?session=demo-lesson&tenant=demo#token=" in link for link in links)
        async with httpx.AsyncClient() as http:
            page = await http.get(links[0].split("#")[0])
            assert page.status_code == 200 and "<html" in page.text.lower()
            roster = await http.get(f"http://127.0.0.1:{port}/api/v1/sessions/demo-lesson",
                                    headers={"Authorization": f"Bearer {info['api_key']}"})
            assert roster.status_code == 200
            assert len(roster.json()["roster"]["students"]) == 2
        url = f"ws://127.0.0.1:{port}/ws"
        trainer = await Client.open(url)
        assert (await trainer.connect(tokens["demo-trainer"]))["type"] == "connected"
        assert (await trainer.request("join", session="demo-lesson"))["type"] == "joined"
        student = await Client.open(url, "msgpack")
        assert (await student.connect(tokens["demo-student-1"]))["me"]["role"] == "student"
        assert (await student.request("join", session="demo-lesson"))["type"] == "joined"
        await trainer.request("publish", session="demo-lesson",
                              event={"kind": "screen.navigate", "screen": "intro"})
        assert (await student.expect("event"))["event"]["screen"] == "intro"
        proc.send_signal(signal.SIGTERM)
        for client in (trainer, student):
            frame = await client.expect("disconnect")
            assert frame["code"] == 1012 and frame["reconnect"] is True
            assert await client.closed_code() == 1012
        # uvicorn re-raises the signal after its graceful shutdown: exit by SIGTERM itself.
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        _, logs = proc.communicate()
        assert '"msg":"listening"' in logs
        for secret in (*tokens.values(), "tessa@example.nl", "sam@example.nl", "Tessa",
                       "demo-student-1", "127.0.0.1:"):
            assert secret not in logs.replace(f'"address":"127.0.0.1:{port}"', ""), secret
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_malformed_tenant_file_fails_at_start_with_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "tenants.toml"
    config.write_text('[acme]\nsecrets = ["super-secret-value"\napi_key = "k"\n')
    proc = spawn(free_port(), CLASSROOM_TENANTS=str(config))
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "configuration error" in stderr and str(config) in stderr
    assert "super-secret-value" not in stderr


async def test_configured_tenants_print_no_demo_banner(tmp_path: Path) -> None:
    config = tmp_path / "tenants.json"
    config.write_text('{"acme": {"secrets": ["s3cr3t-0123456789-0123456789-0123"], '
                      '"api_key": "acme-api-key"}}')
    port = free_port()
    proc = spawn(port, CLASSROOM_TENANTS=str(config))
    try:
        await wait_listening(port, proc)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=15)
        assert "demo" not in stdout
        assert "acme-api-key" not in stdout + stderr
        assert proc.returncode in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


COLLECTOR_PROBE = """
import gc, json
from classroom.cli import freeze_startup_objects
freeze_startup_objects()
before = [s["collections"] for s in gc.get_stats()]
for _ in range(200):  # fan-out iterations: 3,000 short-lived containers in flight at once
    in_flight = [{"frame": n} for n in range(3000)]
    del in_flight
after = [s["collections"] for s in gc.get_stats()]
print(json.dumps([a - b for a, b in zip(after, before)]))
"""


def test_a_node_collects_young_objects_rarely_and_in_flight_ones_never_reach_a_full_pass(
) -> None:
    """What a node does between frames (600,000 short-lived objects here) costs at most a
    few dozen young collections and no full one: at CPython's default, the same loop ran
    734 young collections and promoted what was in flight at each."""
    probe = subprocess.run([sys.executable, "-c", COLLECTOR_PROBE], capture_output=True,
                           text=True, timeout=60, check=True)
    young, middle, full = (int(n) for n in probe.stdout.strip().strip("[]").split(","))
    assert young <= 100, probe.stdout
    assert middle <= 10 and full == 0, probe.stdout
