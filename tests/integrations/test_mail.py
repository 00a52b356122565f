"""E-mail: the outbox contract (memory and Redis), the sender against a real SMTP server
(aiosmtpd on loopback: up, down then up, refusing, hanging, with AUTH) and the templates.

Back-off and timeouts are made small through constructor arguments, so retries happen
within a test; outbox contract tests drive a fake clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from classroom.backends.redis_client import outbox_client
from classroom.config import Settings
from classroom.domain.cohort import cohort_rows, roster_participant
from classroom.integrations.mail import (
    Backoff,
    MailOutbox,
    MailSender,
    MemoryMailOutbox,
    Message,
    RedisMailOutbox,
    invitations,
    is_message_id,
    mail_from_settings,
    parse_smtp_url,
    summaries,
)
from tests.fakes.smtp_server import SmtpServer
from tests.redis_topologies import ClusterSet

REDIS_URL = os.environ.get("CLASSROOM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MAIL_FROM = "Classroom <noreply@acme.test>"

ROSTER: dict[str, Any] = {
    "title": "Excel voor gevorderden", "course": "excel-2",
    "trainers": ["t1", "t2"],
    "students": [
        {"sub": "s1", "name": "Anna de Vries", "email": "anna@example.nl",
         "phone": "+31 6 11111111", "trainer": "t1"},
        {"sub": "s2", "name": "Bram Jansen", "email": "bram@example.nl",
         "phone": "+31 6 22222222", "trainers": ["t2"]},
        {"sub": "s3", "name": "Chris Bakker", "email": "chris@example.nl",
         "phone": "+31 6 33333333"},
        {"sub": "s4", "name": "Dewi Zonder Mail", "phone": "+31 6 44444444"},
    ],
}


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def message(n: int = 0, *, about: list[str] | None = None, tenant: str = "acme",
            recipient: str = "s1", dedupe: str | None = None, now: float = 0.0) -> Message:
    return Message.new(now=now, tenant=tenant, kind="invitation", to=f"p{n}@example.nl",
                       recipient=recipient, subject=f"Subject {n}", text=f"Body {n}",
                       about=about if about is not None else [recipient], session="s-1",
                       dedupe=dedupe)


# -- outbox contract -------------------------------------------------------------------

class Nodes:
    """Outboxes as nodes see them: memory shares one instance, Redis shares one prefix."""

    def __init__(self, kind: str, url: str = REDIS_URL) -> None:
        self.kind = kind
        self.url = url
        self.prefix = f"test-mail-{uuid.uuid4().hex[:12]}"
        self.made: list[MailOutbox] = []

    def __call__(self, **options: Any) -> MailOutbox:
        if self.kind == "memory":
            if not self.made:
                self.made.append(MemoryMailOutbox(**options))
            return self.made[0]
        outbox = RedisMailOutbox(self.url, prefix=self.prefix, **options)
        self.made.append(outbox)
        return outbox

    async def stored(self) -> dict[bytes, Any]:
        """Everything under the prefix in Redis (empty for memory), to look for leftovers."""
        if self.kind == "memory":
            return {}
        client = outbox_client(self.url)
        found: dict[bytes, Any] = {}
        async for key in client.scan_iter(f"{self.prefix}:*"):
            kind = await client.type(key)
            if kind == b"hash":
                found[key] = await client.hgetall(key)
            elif kind == b"set":
                found[key] = await client.smembers(key)
            else:
                found[key] = await client.zrange(key, 0, -1)
        await client.aclose()
        return found

    async def clean(self) -> None:
        for outbox in self.made:
            await outbox.close()
        if self.kind != "memory":
            client = outbox_client(self.url)
            keys = [key async for key in client.scan_iter(f"{self.prefix}:*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    """The outbox in memory, on the test Redis, or on a cluster (its keys in one slot)."""
    url = request.getfixturevalue("cluster_set").url if request.param == "cluster" else REDIS_URL
    made = Nodes(request.param, url)
    yield made
    await made.clean()


async def test_enqueue_claim_and_mark_sent(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock)
    first, second = message(1, now=clock.now - 1), message(2, now=clock.now)
    assert await outbox.enqueue(second) and await outbox.enqueue(first)
    assert await outbox.depth() == 2
    claimed = await outbox.claim(10, lease=60)
    assert [m.id for m in claimed] == [first.id, second.id]  # earliest due first
    assert claimed[0] == first
    assert await outbox.claim(10, lease=60) == []  # leased, nobody else gets them
    await outbox.mark_sent(first)
    assert await outbox.depth() == 1
    [record] = [m for m in await outbox.about("acme", "s1") if m["id"] == first.id]
    assert record["status"] == "sent" and record["sent_at"] == clock.now


async def test_a_lease_runs_out_so_a_crashed_node_only_delays_mail(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock)
    await outbox.enqueue(message(now=clock.now))
    assert len(await outbox.claim(10, lease=30)) == 1
    clock.now += 29
    assert await outbox.claim(10, lease=30) == []
    clock.now += 2
    assert len(await outbox.claim(10, lease=30)) == 1


async def test_retries_back_off_exponentially_up_to_the_cap(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, backoff=Backoff(base=1.0, cap=8.0, jitter=0.0))
    current = message(now=clock.now)
    await outbox.enqueue(current)
    delays = []
    for _ in range(5):
        [current] = await outbox.claim(10, lease=60)
        current = await outbox.retry_later(current, ConnectionRefusedError("smtp.example.nl"))
        delays.append(current.next_attempt_at - clock.now)
        assert await outbox.claim(10, lease=60) == []  # not due yet
        clock.now = current.next_attempt_at
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0]
    [stored] = await outbox.claim(10, lease=60)
    assert stored.attempts == 5 and stored.last_error == "ConnectionRefusedError"
    assert await outbox.depth() == 1


def test_jitter_only_shortens_the_delay() -> None:
    backoff = Backoff(base=1.0, cap=60.0, jitter=0.2)
    assert backoff.delay(3, rng=lambda: 0.0) == 4.0
    assert backoff.delay(3, rng=lambda: 0.999) == pytest.approx(3.2, abs=0.01)
    assert backoff.delay(40, rng=lambda: 0.0) == 60.0


async def test_two_nodes_claiming_at_once_never_get_the_same_message(nodes: Nodes) -> None:
    one, two = nodes(), nodes()
    ids = set()
    for n in range(60):
        queued = message(n)
        ids.add(queued.id)
        await one.enqueue(queued)

    async def drain(outbox: MailOutbox) -> list[str]:
        got: list[str] = []
        while batch := await outbox.claim(3, lease=60):
            got += [m.id for m in batch]
            await asyncio.sleep(0)
        return got

    got = await asyncio.gather(drain(one), drain(two), drain(one), drain(two))
    flat = [mid for part in got for mid in part]
    assert len(flat) == len(set(flat)) == 60 and set(flat) == ids


async def test_a_dedupe_key_is_held_while_the_mail_or_its_record_is(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, keep_sent=100.0)
    first = message(1, dedupe="k", now=clock.now)
    assert await outbox.enqueue(first)
    assert not await outbox.enqueue(message(2, dedupe="k", now=clock.now))
    await outbox.claim(10, lease=60)
    await outbox.mark_sent(first)
    assert not await outbox.enqueue(message(3, dedupe="k", now=clock.now))
    clock.now += 101
    other = message(4, recipient="s9", now=clock.now)
    await outbox.enqueue(other)
    assert await outbox.about("acme", "s1") == []
    await outbox.claim(10, lease=60)  # the worker's next poll prunes expired records
    assert await outbox.enqueue(message(5, dedupe="k", now=clock.now))


async def test_about_shows_a_user_their_mail_and_forget_erases_it(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock)
    invite = message(1, recipient="s1", now=clock.now - 4)
    summary = message(2, recipient="t1", about=["t1", "s1", "s2"], now=clock.now - 3)
    other_tenant = message(3, tenant="globex", recipient="s1", now=clock.now - 2)
    unrelated = message(4, recipient="s3", now=clock.now - 1)
    for queued in (invite, summary, other_tenant, unrelated):
        await outbox.enqueue(queued)
    await outbox.claim(1, lease=60)
    await outbox.mark_sent(invite)

    mine = await outbox.about("acme", "s1")
    assert [m["id"] for m in mine] == [invite.id, summary.id]
    assert mine[0]["status"] == "sent" and mine[0]["to"] == "p1@example.nl"
    assert mine[0]["text"] == "Body 1"
    # A summary about s1 went to a trainer: s1 sees that it exists, not its text or address.
    assert mine[1]["status"] == "queued" and "to" not in mine[1] and "text" not in mine[1]
    assert [m["id"] for m in await outbox.about("acme", "t1")] == [summary.id]
    assert "text" in (await outbox.about("acme", "t1"))[0]

    assert await outbox.forget("acme", "s1") == 2
    assert await outbox.about("acme", "s1") == []
    assert await outbox.about("acme", "s2") == []  # the summary held s1's data: gone whole
    assert [m["id"] for m in await outbox.about("globex", "s1")] == [other_tenant.id]
    assert await outbox.depth() == 2
    assert {m.id for m in await outbox.claim(10, lease=60)} == {other_tenant.id, unrelated.id}
    leftovers = repr(await nodes.stored())
    for gone in (invite, summary):
        assert gone.id not in leftovers and gone.to not in leftovers
    assert "about:acme:s1'" not in leftovers and "about:acme:s2'" not in leftovers


async def test_erasure_during_a_send_is_not_undone(nodes: Nodes) -> None:
    outbox = nodes()
    first, second = message(1), message(2)
    await outbox.enqueue(first)
    await outbox.enqueue(second)
    await outbox.claim(10, lease=60)
    await outbox.forget("acme", "s1")
    await outbox.retry_later(first, TimeoutError())
    await outbox.mark_sent(second)
    assert await outbox.depth() == 0
    assert await outbox.about("acme", "s1") == []
    assert await outbox.next_due() is None


async def test_sent_records_are_kept_only_for_a_while(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, keep_sent=7 * 86400.0)
    sent = message(now=clock.now)
    await outbox.enqueue(sent)
    await outbox.claim(10, lease=60)
    await outbox.mark_sent(sent)
    clock.now += 6 * 86400
    assert len(await outbox.about("acme", "s1")) == 1
    clock.now += 2 * 86400
    assert await outbox.about("acme", "s1") == []
    await outbox.claim(10, lease=60)
    assert sent.id not in repr(await nodes.stored())  # the record itself is gone, not hidden


# -- dead letters (issue 12, point 15: mail is no longer retried forever) -------------


async def test_after_max_attempts_a_message_is_dead_and_never_claimed_again(
    nodes: Nodes,
) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, backoff=Backoff(base=1.0, cap=8.0, jitter=0.0), max_attempts=3)
    current = message(dedupe="k", now=clock.now)
    await outbox.enqueue(current)
    error = ConnectionRefusedError("p0@example.nl: mailbox unavailable")
    for attempt in (1, 2, 3):
        [current] = await outbox.claim(10, lease=60)
        current = await outbox.retry_later(current, error)
        assert current.attempts == attempt
        assert (current.died_at is None) == (attempt < 3)
        clock.now = max(clock.now, current.next_attempt_at)
    assert current.died_at == clock.now and current.last_error == "ConnectionRefusedError"
    assert await outbox.depth() == 0 and await outbox.next_due() is None
    clock.now += 86400  # a day later, within keep_sent: still never claimed
    assert await outbox.claim(10, lease=60) == []
    [dead] = await outbox.dead_letters("acme", 10)
    assert (dead.id, dead.attempts, dead.last_error, dead.died_at, dead.to) == (
        current.id, 3, "ConnectionRefusedError", current.died_at, "p0@example.nl")
    assert await outbox.dead_letters("globex", 10) == []
    assert await outbox.dead_count() == 1 and await outbox.dead_count("acme") == 1
    assert await outbox.dead_count("globex") == 0
    [shown] = await outbox.about("acme", "s1")
    assert shown["status"] == "dead" and shown["died_at"] == current.died_at
    assert shown["attempts"] == 3 and shown["sent_at"] is None
    assert not await outbox.enqueue(message(1, dedupe="k", now=clock.now))  # still held
    assert "mailbox unavailable" not in repr(await nodes.stored())  # the class name only


async def test_a_dead_letter_is_revived_by_its_own_tenant_only(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, max_attempts=1)
    mail = message(now=clock.now)
    await outbox.enqueue(mail)
    [claimed] = await outbox.claim(10, lease=60)
    assert (await outbox.retry_later(claimed, TimeoutError())).died_at == clock.now
    assert is_message_id(mail.id) and not is_message_id("../" + mail.id)
    assert await outbox.revive("globex", mail.id) is None
    assert await outbox.revive("acme", mail.id.upper()) is None
    assert await outbox.revive("acme", "0" * 32) is None
    assert await outbox.dead_count("acme") == 1
    clock.now += 10
    revived = await outbox.revive("acme", mail.id)
    assert revived is not None and revived.id == mail.id
    assert (revived.attempts, revived.last_error, revived.died_at) == (0, None, None)
    assert revived.next_attempt_at == clock.now and revived.created_at == mail.created_at
    assert await outbox.revive("acme", mail.id) is None  # once
    assert await outbox.dead_letters("acme", 10) == [] and await outbox.dead_count() == 0
    assert await outbox.depth() == 1
    [again] = await outbox.claim(10, lease=60)
    assert again == revived
    # A queued message is stored as before dead letters existed (older nodes read it).
    assert b"died_at" not in repr(await nodes.stored()).encode()
    await outbox.mark_sent(again)
    assert (await outbox.about("acme", "s1"))[0]["status"] == "sent"


async def test_dead_letters_are_listed_newest_last_and_limited(nodes: Nodes) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, max_attempts=1)
    made = [message(n, now=clock.now) for n in range(3)]
    for mail in made:
        await outbox.enqueue(mail)
    claimed = {m.id: m for m in await outbox.claim(10, lease=60)}
    for mail in made:
        await outbox.retry_later(claimed[mail.id], TimeoutError())
        clock.now += 1
    assert [m.id for m in await outbox.dead_letters("acme", 10)] == [m.id for m in made]
    assert [m.id for m in await outbox.dead_letters("acme", 2)] == [m.id for m in made[1:]]
    assert await outbox.dead_count("acme") == 3


async def test_dead_letters_are_erased_with_the_user_and_expire_like_sent_records(
    nodes: Nodes,
) -> None:
    clock = Clock()
    outbox = nodes(clock=clock, keep_sent=100.0, max_attempts=1)
    invite = message(1, recipient="s1", dedupe="k", now=clock.now)
    summary = message(2, recipient="t1", about=["t1", "s2"], now=clock.now)
    for mail in (invite, summary):
        await outbox.enqueue(mail)
    for claimed in await outbox.claim(10, lease=60):
        await outbox.retry_later(claimed, TimeoutError())
    assert await outbox.dead_count("acme") == 2
    assert await outbox.forget("acme", "s1") == 1
    assert [m.id for m in await outbox.dead_letters("acme", 10)] == [summary.id]
    leftovers = repr(await nodes.stored())
    assert invite.id not in leftovers and invite.to not in leftovers
    assert await outbox.enqueue(message(3, dedupe="k", now=clock.now))  # the key went too
    await outbox.claim(10, lease=60)
    clock.now += 101
    assert await outbox.dead_letters("acme", 10) == [] and await outbox.dead_count() == 0
    assert await outbox.about("acme", "t1") == [] and await outbox.about("acme", "s2") == []
    await outbox.claim(10, lease=60)  # the worker's next poll prunes them
    assert summary.id not in repr(await nodes.stored())  # dropped, not hidden


def test_the_default_of_36_attempts_means_about_a_day_of_retries() -> None:
    """The arithmetic docs/protocol.md section 15 and docs/configuration.md state."""
    assert Settings().mail_max_attempts == 36
    waits = [Backoff().delay(n, rng=lambda: 0.0) for n in range(1, 36)]
    assert sum(waits) == 86895.0  # 24.1 h without jitter
    shortest = [Backoff().delay(n, rng=lambda: 1.0) for n in range(1, 36)]
    assert round(sum(shortest) / 3600, 1) == 19.3


def test_max_attempts_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLASSROOM_MAIL_MAX_ATTEMPTS", "5")
    outbox, _ = mail_from_settings(Settings(redis_url=None))
    assert outbox.max_attempts == 5
    monkeypatch.setenv("CLASSROOM_MAIL_MAX_ATTEMPTS", "0")
    with pytest.raises(ValueError, match="CLASSROOM_MAIL_MAX_ATTEMPTS"):
        Settings()
    with pytest.raises(ValueError, match="max_attempts"):
        MemoryMailOutbox(max_attempts=0)


# -- sender against a real SMTP server -----------------------------------------------


@pytest.fixture
async def sender_for() -> AsyncIterator[Callable[..., MailSender]]:
    """Started senders with tiny timeouts and back-off; stopped after the test."""
    made: list[MailSender] = []

    def make(server: SmtpServer | None, outbox: MailOutbox | None = None,
             **options: Any) -> MailSender:
        outbox = outbox or MemoryMailOutbox(backoff=Backoff(base=0.05, cap=0.2, jitter=0.0))
        options.setdefault("smtp_url", server.url if server else None)
        options.setdefault("mail_from", MAIL_FROM)
        sender = MailSender(outbox, timeout=0.5, poll_interval=0.05,
                            local_hostname="classroom.test", **options)
        sender.start()
        made.append(sender)
        return sender

    yield make
    for sender in made:
        await sender.stop()
        await sender.outbox.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


async def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def attempts(sender: MailSender) -> int:
    records = await sender.outbox.about("acme", "s1")
    return int(records[0]["attempts"]) if records else -1


async def test_mail_is_delivered_with_headers_and_both_languages(
    smtp: SmtpServer, sender_for: Callable[..., MailSender], caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="classroom.integrations.mail")
    smtp.start()
    sender = sender_for(smtp)
    assert await sender.submit(invitations("acme", "s-1", ROSTER, tenant_name="Acme Training")) == 3
    received = await smtp.wait_for(3)
    assert len(received) == 3
    anna = next(r for r in received if r.rcpt_tos == ["anna@example.nl"])
    mail = anna.message
    assert anna.mail_from == "noreply@acme.test"
    assert mail["From"] == MAIL_FROM and mail["To"] == "anna@example.nl"
    assert " ".join(mail["Subject"].split()) == (
        "Uitnodiging / Invitation: Excel voor gevorderden")
    assert mail["Message-ID"].endswith("@acme.test>")
    text = anna.text()
    assert text.index("Beste Anna de Vries") < text.index("Dear Anna de Vries")
    assert "Acme Training" in text and "bram@example.nl" not in text
    assert 'lang="nl"' in (anna.html() or "")
    await until(lambda: _depth_is(sender, 0))
    assert (await sender.outbox.about("acme", "s1"))[0]["status"] == "sent"
    assert "example.nl" not in caplog.text and "anna" not in caplog.text.lower()


async def _depth_is(sender: MailSender, depth: int) -> bool:
    return await sender.outbox.depth() == depth


async def test_two_senders_on_one_outbox_deliver_every_mail_exactly_once(
    nodes: Nodes, smtp: SmtpServer, sender_for: Callable[..., MailSender],
) -> None:
    smtp.start()
    one = sender_for(smtp, outbox=nodes(), batch=2)
    two = sender_for(smtp, outbox=nodes(), batch=2)
    mails = [*invitations("acme", "s-1", ROSTER), *invitations("acme", "s-2", ROSTER),
             *invitations("acme", "s-3", ROSTER)]
    await one.submit(mails[::2])
    await two.submit(mails[1::2])
    await smtp.wait_for(len(mails))
    await asyncio.sleep(0.2)
    ids = sorted(r.message["Message-ID"] for r in smtp.received)
    assert ids == sorted(f"<{m.id}@acme.test>" for m in mails)
    assert await one.outbox.depth() == 0


async def test_a_stop_that_meets_a_wake_up_still_stops_the_worker(
    smtp: SmtpServer, sender_for: Callable[..., MailSender],
) -> None:
    """stop() in the same loop iteration as a wake-up: the worker must end, not go on."""
    smtp.start()
    sender = sender_for(smtp)
    await asyncio.sleep(0.1)  # the worker has looked at the empty outbox and waits
    sender.wake()
    await sender.stop()
    [invite] = invitations("acme", "s-1", {"students": [ROSTER["students"][0]]})
    assert await sender.outbox.enqueue(invite)  # straight into the outbox: no wake-up
    await asyncio.sleep(0.5)  # ten poll intervals of a worker that would still run
    assert smtp.received == []
    assert await sender.outbox.depth() == 1


async def test_a_server_that_is_down_delays_mail_until_it_comes_up(
    smtp: SmtpServer, sender_for: Callable[..., MailSender], caplog: pytest.LogCaptureFixture,
) -> None:
    sender = sender_for(smtp)  # the server is not started: connections are refused
    [invite] = invitations("acme", "s-1", {"students": [ROSTER["students"][0]]})
    await sender.submit([invite])
    await until(lambda: _attempted(sender, 2))
    assert await sender.outbox.depth() == 1
    assert (await sender.outbox.about("acme", "s1"))[0]["status"] == "queued"
    assert "ConnectionRefusedError" in caplog.text or "SMTPConnectError" in caplog.text
    assert "anna@example.nl" not in caplog.text
    smtp.start()
    assert len(await smtp.wait_for(1)) == 1
    await until(lambda: _depth_is(sender, 0))
    await asyncio.sleep(0.3)  # several poll intervals: nothing is sent twice
    assert len(smtp.received) == 1


async def _attempted(sender: MailSender, count: int) -> bool:
    return await attempts(sender) >= count


async def test_a_refusing_server_gets_retries_and_loses_nothing(
    smtp: SmtpServer, sender_for: Callable[..., MailSender],
) -> None:
    smtp.refuse = True
    smtp.start()
    sender = sender_for(smtp)
    await sender.submit(invitations("acme", "s-1", {"students": [ROSTER["students"][0]]}))
    await until(lambda: _attempted(sender, 3))
    assert smtp.rcpt_attempts >= 3 and smtp.received == []
    assert (await sender.outbox.about("acme", "s1"))[0]["status"] == "queued"
    smtp.refuse = False
    assert len(await smtp.wait_for(1)) == 1
    await asyncio.sleep(0.3)
    assert len(smtp.received) == 1 and await sender.outbox.depth() == 0


async def _dead_count_is(outbox: MailOutbox, count: int) -> bool:
    return await outbox.dead_count() == count


async def test_a_server_that_always_refuses_makes_a_dead_letter_that_a_retry_delivers(
    nodes: Nodes, smtp: SmtpServer, sender_for: Callable[..., MailSender],
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp.refuse = True
    smtp.start()
    gauge: list[int] = []
    outbox = nodes(backoff=Backoff(base=0.05, cap=0.2, jitter=0.0), max_attempts=3)
    sender = sender_for(smtp, outbox=outbox, on_dead=gauge.append)
    [invite] = invitations("acme", "s-1", {"students": [ROSTER["students"][0]]})
    await sender.submit([invite])
    await until(lambda: _dead_count_is(outbox, 1))
    [dead] = await outbox.dead_letters("acme", 10)
    assert (dead.id, dead.attempts, dead.last_error) == (invite.id, 3, "SMTPRecipientsRefused")
    await asyncio.sleep(0.6)  # twelve polls, three times the whole back-off: no fourth try
    assert smtp.rcpt_attempts == 3 and smtp.received == []
    assert await outbox.depth() == 0 and await outbox.next_due() is None
    assert gauge[-1] == 1
    assert (await outbox.about("acme", "s1"))[0]["status"] == "dead"
    assert "dead letter" in caplog.text and "anna@example.nl" not in caplog.text
    assert "try again later" not in repr(await nodes.stored())  # never the server's text

    smtp.refuse = False
    assert await outbox.revive("globex", invite.id) is None
    assert await outbox.revive("acme", invite.id) is not None
    sender.wake()
    [received] = await smtp.wait_for(1)
    assert received.message["Message-ID"] == f"<{invite.id}@acme.test>"  # the same mail
    await until(lambda: _depth_is(sender, 0))
    assert await outbox.dead_letters("acme", 10) == []
    assert (await outbox.about("acme", "s1"))[0]["status"] == "sent"
    await asyncio.sleep(0.2)
    assert gauge[-1] == 0 and len(smtp.received) == 1


async def test_auth_with_user_and_password(sender_for: Callable[..., MailSender]) -> None:
    with SmtpServer(user="mailer", password="s3cr@t:pw") as server:
        assert parse_smtp_url(server.url.replace("s3cr@t:pw", "s3cr%40t%3Apw")).password == (
            "s3cr@t:pw")
        good = sender_for(server, smtp_url=server.url.replace("s3cr@t:pw", "s3cr%40t%3Apw"))
        await good.submit(invitations("acme", "s-1", {"students": [ROSTER["students"][0]]}))
        [received] = await server.wait_for(1)
        assert received.login == "mailer"

        bad = sender_for(server, smtp_url=f"smtp://mailer:wrong@{server.host}:{server.port}")
        await bad.submit(invitations("acme", "s-1", {"students": [ROSTER["students"][0]]}))
        await until(lambda: _attempted(bad, 2))
        assert len(server.received) == 1 and await bad.outbox.depth() == 1


async def test_without_smtp_mail_stays_queued_and_one_warning_says_so(
    sender_for: Callable[..., MailSender], caplog: pytest.LogCaptureFixture,
) -> None:
    depths: list[int] = []
    sender = sender_for(None, on_depth=depths.append)
    assert not sender.configured
    await sender.submit(invitations("acme", "s-1", ROSTER))
    await asyncio.sleep(0.3)
    assert await sender.outbox.depth() == 3 and await attempts(sender) == 0
    assert depths[-1] == 3  # the metrics gauge sees the backlog
    assert caplog.text.count("mail stays queued") == 1


async def test_a_hanging_server_never_stalls_the_event_loop(
    smtp: SmtpServer, sender_for: Callable[..., MailSender],
) -> None:
    smtp.hang = 3.0  # sits on RCPT far longer than the sender's timeout
    smtp.start()
    loop = asyncio.get_running_loop()
    gaps: list[float] = []

    async def ticker() -> None:
        last = loop.time()
        while True:
            await asyncio.sleep(0.05)
            gaps.append(loop.time() - last)
            last = loop.time()

    ticking = asyncio.create_task(ticker())
    sender = sender_for(smtp)
    await sender.submit(invitations("acme", "s-1", {"students": [ROSTER["students"][0]]}))
    await until(lambda: _attempted(sender, 1), timeout=6.0)
    ticking.cancel()
    assert len(gaps) >= 5 and max(gaps) < 0.3, max(gaps)  # a blocking send: >= 0.5 s
    assert smtp.received == [] and await sender.outbox.depth() == 1
    smtp.hang = 0.0
    assert len(await smtp.wait_for(1)) == 1


async def test_stopping_during_quit_still_hangs_up(
    smtp: SmtpServer, sender_for: Callable[..., MailSender],
) -> None:
    """A node shutting down while the mail server dawdles over QUIT: the mail is out,
    and the connection is closed rather than left open until the process exits."""
    smtp.hang_quit = 3.0
    smtp.start()
    sender = sender_for(smtp)
    await sender.submit(invitations("acme", "s-1", {"students": [ROSTER["students"][0]]}))
    assert len(await smtp.wait_for(1)) == 1
    await asyncio.sleep(0.1)  # the sender is waiting for the answer to QUIT
    await sender.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2.0
    while smtp.open_connections and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert smtp.open_connections == 0
    assert await sender.outbox.depth() == 0


def test_smtp_urls() -> None:
    plain = parse_smtp_url("smtp://user:pw@mail.example.nl:2525")
    assert (plain.hostname, plain.port, plain.username, plain.password) == (
        "mail.example.nl", 2525, "user", "pw")
    assert not plain.use_tls and not plain.start_tls and "pw" not in repr(plain)
    upgrade = parse_smtp_url("smtp://mail.example.nl?starttls=1")
    assert upgrade.start_tls and not upgrade.use_tls and upgrade.port == 587
    tls = parse_smtp_url("smtps://mail.example.nl")
    assert tls.use_tls and not tls.start_tls and tls.port == 465
    assert parse_smtp_url("smtp://mail.example.nl").port == 25
    for bad in ("http://mail.example.nl", "smtp://", "mail.example.nl:25"):
        with pytest.raises(ValueError, match="SMTP_URL"):
            parse_smtp_url(bad)


async def test_the_factory_picks_the_outbox_from_the_settings() -> None:
    outbox, sender = mail_from_settings(Settings(smtp_url="smtp://localhost:2525",
                                                 mail_from=MAIL_FROM, redis_url=None))
    assert isinstance(outbox, MemoryMailOutbox) and sender.configured
    outbox, sender = mail_from_settings(Settings(redis_url=REDIS_URL, smtp_url=None),
                                        on_depth=print)
    assert isinstance(outbox, RedisMailOutbox) and not sender.configured
    assert await sender.run_once() == 0
    await outbox.close()


# -- templates ------------------------------------------------------------------------


def test_an_invitation_per_student_with_an_address_about_that_student_only() -> None:
    sent = invitations("acme", "s-1", ROSTER, tenant_name="Acme Training",
                       join_url={"s1": "https://acme.test/join/s1"})
    assert [(m.recipient, m.to, m.about, m.kind) for m in sent] == [
        ("s1", "anna@example.nl", ["s1"], "invitation"),
        ("s2", "bram@example.nl", ["s2"], "invitation"),
        ("s3", "chris@example.nl", ["s3"], "invitation"),
    ]
    students = ROSTER["students"]
    for mail in sent:
        me = next(s for s in students if s["sub"] == mail.recipient)
        body = mail.text + (mail.html or "")
        assert me["name"] in mail.text and "Excel voor gevorderden" in mail.text
        assert mail.text.index("Beste") < mail.text.index("Dear")
        for other in students:
            if other is not me:
                for value in (other.get("email"), other.get("phone"), other["name"]):
                    assert value is None or value not in body
        assert me["phone"] not in body  # not even their own: the mail needs no phone
    assert "https://acme.test/join/s1" in sent[0].text
    assert "https://" not in sent[1].text


def test_invitations_are_deduplicated_per_student_and_address() -> None:
    again = invitations("acme", "s-1", ROSTER)
    assert [m.dedupe for m in again] == [m.dedupe for m in invitations("acme", "s-1", ROSTER)]
    moved = {**ROSTER, "students": [{**ROSTER["students"][0], "email": "anna@new.nl"}]}
    assert invitations("acme", "s-1", moved)[0].dedupe != again[0].dedupe
    assert invitations("acme", "s-2", ROSTER)[0].dedupe != again[0].dedupe
    assert "s1" not in (again[0].dedupe or "") and "anna" not in (again[0].dedupe or "")


def test_titles_and_names_cannot_inject_headers_or_markup() -> None:
    roster = {"title": "Excel\r\nBcc: all@example.nl",
              "students": [{"sub": "x", "name": "<b>X</b>", "email": "x@example.nl"}]}
    [mail] = invitations("acme", "s-1", roster)
    assert "\n" not in mail.subject and "\r" not in mail.subject
    assert "<b>X</b>" not in (mail.html or "") and "&lt;b&gt;X&lt;/b&gt;" in (mail.html or "")


def rows_for(roster: dict[str, Any], progress: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Cohort rows as the back office builds them: participants carry full contact data."""
    def participant(student: dict[str, Any]) -> dict[str, Any]:
        return roster_participant(student, secret=b"k" * 32, tenant="acme", session="s-1",
                                  policy="first")

    return cohort_rows(roster_students=roster["students"], progress=progress, online=set(),
                       hands=set(), trainer_screen=None, screens=None, idle_after=120.0,
                       make_participant=participant)


def test_a_summary_per_trainer_with_their_students_only() -> None:
    progress = {
        "s1": {"screen": "intro", "completed": ["intro"], "score": 7, "last_activity": 1.0},
        "s2": {"screen": "pivot", "completed": ["intro", "pivot"], "last_activity": 1.0},
    }
    rows = rows_for(ROSTER, progress)
    addresses = {"t1": "t1@acme.test", "t2": "t2@acme.test", "s1": "anna@example.nl"}
    sent = summaries("acme", "s-1", ROSTER, addresses, rows, tenant_name="Acme Training")
    assert [(m.recipient, m.to, m.kind) for m in sent] == [
        ("t1", "t1@acme.test", "summary"), ("t2", "t2@acme.test", "summary")]
    one, two = sent
    assert one.about == ["t1", "s1", "s3", "s4"] and two.about == ["t2", "s2", "s3", "s4"]
    assert "Anna de Vries: aanwezig; scherm intro, 1 voltooid, score 7" in one.text
    assert "Anna de Vries: attended; screen intro, 1 completed, score 7" in one.text
    assert "Chris Bakker: niet verschenen" in one.text and "Chris Bakker: never joined" in one.text
    assert "Bram" not in one.text and "Anna" not in two.text
    assert "Aanwezig: 1 van 3" in one.text and "Attended: 1 of 3" in one.text
    assert one.text.index("Beste trainer") < one.text.index("Dear trainer")
    for mail in sent:
        for student in ROSTER["students"]:
            assert student.get("email", "@@") not in mail.text + (mail.html or "")
            assert student["phone"] not in mail.text + (mail.html or "")


def test_joined_students_count_as_present_and_only_trainers_get_summaries() -> None:
    rows = rows_for(ROSTER, {})
    [mail] = summaries("acme", "s-1", ROSTER, {"t1": "t1@acme.test"}, rows, joined={"s3"})
    assert "Chris Bakker: aanwezig" in mail.text and "Anna de Vries: niet verschenen" in mail.text
    assert summaries("acme", "s-1", ROSTER, {"s1": "anna@example.nl"}, rows) == []
    assert summaries("acme", "s-1", {**ROSTER, "trainers": []}, {"t1": "t1@acme.test"},
                     rows) == []


async def test_on_a_cluster_records_are_pruned_without_a_thread(
    cluster_set: ClusterSet, thread_starts: list[str],
) -> None:
    """redis-py 8.1's cluster transaction (MULTI) ran each command in a thread of its own
    and blocked the event loop while it waited; the removal is one script now."""
    made = Nodes("cluster", cluster_set.url)
    try:
        clock = Clock()
        outbox = made(clock=clock, keep_sent=60.0)
        sent = message(dedupe="once", now=clock.now)
        await outbox.enqueue(sent)
        await outbox.claim(10, lease=60)
        await outbox.mark_sent(sent)
        clock.now += 120
        thread_starts.clear()
        await outbox.claim(10, lease=60)  # the worker's poll prunes the old record
        assert sent.id not in repr(await made.stored())
        assert await outbox.enqueue(message(dedupe="once", now=clock.now))  # key released
        assert thread_starts == []
    finally:
        await made.clean()
