"""The command handlers without a socket: a recording peer in front of a real node.

The peer is the boundary (it stands in for the WebSocket connection); everything
behind it is real: the node on the in-memory broker and presence store, the
tenant's signed tokens, the session layer and the privacy views.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from auth.identity import Identity
from auth.tenants import Tenant
from classroom.backends.data.store import DataUnavailable
from classroom.handlers.services import Services
from classroom.handlers.table import HANDLERS, run_command
from classroom.integrations.video import NOT_CONFIGURED
from classroom.logs import JsonFormatter
from classroom.protocol.budgets import REPLAY_BUDGET
from classroom.protocol.close_codes import CLOSE_UNAUTHORIZED
from classroom.protocol.codec import Encoding, Payload, decode, encode
from classroom.protocol.commands import COMMAND_TYPES, parse_command
from classroom.sessions.hub import Membership
from tests.handlers.conftest import PING_INTERVAL, token
from tests.wire_contract import LEDGER

TRAINER: dict[str, Any] = {"name": "Tessa Trainer", "email": "tessa@example.nl"}
STUDENT_A: dict[str, Any] = {"name": "Sam Student", "email": "sam@example.nl",
                             "phone": "+31611111111"}
STUDENT_B: dict[str, Any] = {"name": "Noor de Vries", "email": "noor@example.nl"}
NAVIGATE = {"kind": "screen.navigate", "screen": "intro-2"}

# One valid frame body per command that needs a connection first.
AFTER_CONNECT: dict[str, dict[str, Any]] = {
    "refresh": {"token": "not-a-jwt"},
    "ping": {},
    "join": {"session": "s1"},
    "leave": {"session": "s1"},
    "publish": {"session": "s1", "event": {"kind": "chat", "text": "hi"}},
    "presence": {"session": "s1"},
    "history": {"session": "s1"},
    "video": {"session": "s1"},
    "cohort": {"session": "s1"},
}


class RecordingPeer:
    """The socket's stand-in: keeps every frame as the client would decode it.

    Each frame is also checked against ``/asyncapi.json`` (``tests/wire_contract.py``).
    """

    def __init__(self, client_id: str, encoding: Encoding = "json") -> None:
        self.client_id = client_id
        self.encoding: Encoding = encoding
        self.identity: Identity | None = None
        self.features: frozenset[str] = frozenset()
        self.memberships: dict[str, Membership] = {}
        self.sent: list[dict[str, Any]] = []
        """Frames sent to this client alone (replies and errors)."""
        self.replayed: list[dict[str, Any]] = []
        """A join's replay of missed events."""
        self.pushed: list[dict[str, Any]] = []
        """Fan-out from the hub (events, presence)."""
        self.closes: list[tuple[int, str]] = []
        self.ended: list[str] = []
        self.allowance = REPLAY_BUDGET.burst
        """Stored events this client may still be sent from history."""
        self.verdicts: dict[int, tuple[str, str | None]] = {}
        """The contract's verdict on each command sent, by id, until its answer."""

    def _seen(self, payload: Payload) -> dict[str, Any]:
        frame = decode(payload, self.encoding)
        LEDGER.received(frame, self.encoding, self.verdicts)
        return frame

    @property
    def closing(self) -> bool:
        return bool(self.closes)

    def send(self, frame: dict[str, Any]) -> None:
        self.sent.append(self._seen(encode(frame, self.encoding)))

    async def send_replay(
        self, payloads: Iterable[Payload], then: dict[str, Any] | None = None
    ) -> bool:
        self.replayed.extend(self._seen(p) for p in payloads)
        if then is not None and not self.closing:
            self.send(then)
        return not self.closing

    def replay_allowance(self) -> int:
        return self.allowance

    def spend_replay(self, count: int) -> None:
        self.allowance -= count

    def authenticated(self, identity: Identity) -> None:
        self.identity = identity

    def reauthenticated(self, identity: Identity) -> None:
        self.identity = identity

    def request_close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))

    def enqueue(self, payload: Payload) -> None:
        self.pushed.append(self._seen(payload))

    def session_ended(self, session: str) -> None:
        self.ended.append(session)

    def pushes(self, kind: str) -> list[dict[str, Any]]:
        """The pushed frames of one ``type``."""
        return [f for f in self.pushed if f.get("type") == kind]


class Client:
    """A peer plus the services: sends one command at a time, returns its one answer."""

    _ids = itertools.count(1)

    def __init__(self, services: Services, peer: RecordingPeer) -> None:
        self.services = services
        self.peer = peer

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        frame = {"type": kind, "id": next(self._ids), **fields}
        LEDGER.sent(frame, self.peer.verdicts)
        command = parse_command(frame)
        before = len(self.peer.sent)
        await run_command(self.services, self.peer, command, command.id)
        answers = self.peer.sent[before:]
        assert len(answers) == 1, answers
        assert answers[0].get("id") == command.id
        return answers[0]


OpenClient = Callable[..., Awaitable[Client]]
_client_ids = itertools.count(1)


@pytest.fixture
def guest(services: Services) -> Callable[[], Client]:
    """A client that has not sent ``connect``."""
    return lambda: Client(services, RecordingPeer(f"c{next(_client_ids)}"))


@pytest.fixture
def connected(guest: Callable[[], Client]) -> OpenClient:
    """A client connected with a fresh token for ``sub``."""

    async def open_client(sub: str, role: str, sessions: tuple[str, ...] = ("s1",),
                          **profile: Any) -> Client:
        client = guest()
        reply = await client.request("connect", token=token(sub, role, sessions, **profile))
        assert reply["type"] == "connected", reply
        return client

    return open_client


@pytest.fixture
def member(connected: OpenClient) -> OpenClient:
    """A connected client that joined ``s1``."""

    async def join(sub: str, role: str, **profile: Any) -> Client:
        client = await connected(sub, role, **profile)
        reply = await client.request("join", session="s1")
        assert reply["type"] == "joined", reply
        return client

    return join


class JsonLines(logging.Handler):
    """Keeps log records as the server would write them (its JSON formatter)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def refused(reply: dict[str, Any], code: str) -> bool:
    return bool(reply["type"] == "error" and reply["code"] == code)


# -- the table --------------------------------------------------------------------------


def test_handlers_and_connect_cover_every_command_type() -> None:
    assert "connect" not in HANDLERS
    assert set(HANDLERS) | {"connect"} == COMMAND_TYPES
    assert set(AFTER_CONNECT) == set(HANDLERS)


# -- connect ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(AFTER_CONNECT))
async def test_every_command_before_connect_is_unauthorized_and_closes(
    guest: Callable[[], Client], kind: str
) -> None:
    client = guest()
    reply = await client.request(kind, **AFTER_CONNECT[kind])
    assert refused(reply, "unauthorized")
    assert client.peer.closes == [(CLOSE_UNAUTHORIZED, reply["message"])]
    assert client.peer.identity is None


async def test_connect_answers_the_trainers_own_profile(guest: Callable[[], Client]) -> None:
    client = guest()
    reply = await client.request("connect", token=token("t1", "trainer", **TRAINER))
    assert reply == {
        "type": "connected", "client": client.peer.client_id, "ping_interval": PING_INTERVAL,
        "id": reply["id"], "expires_at": client.peer.identity.expires_at, "refresh_before": 60.0,
        "me": {"tenant": "acme", "sub": "t1", "role": "trainer", "sessions": ["s1"],
               "name": "Tessa Trainer", "email": "tessa@example.nl", "display_name": "Tessa"},
    }
    assert client.peer.identity is not None and client.peer.identity.sub == "t1"
    assert client.peer.closes == []


@pytest.mark.parametrize("bad_token", [
    "not-a-jwt",
    token("t1", "trainer", tenant=Tenant("acme", ("another-secret",), "k")),
    token("t1", "trainer", tenant=Tenant("initech", ("initech-secret",), "k")),
    token("t1", "trainer", ttl=-60),
    token("t1", "headmaster"),
], ids=["malformed", "bad-signature", "unknown-tenant", "expired", "unknown-role"])
async def test_a_refused_token_is_unauthorized_and_closes(
    guest: Callable[[], Client], bad_token: str
) -> None:
    client = guest()
    reply = await client.request("connect", token=bad_token)
    assert refused(reply, "unauthorized") and reply["message"] == "token refused"
    assert client.peer.closes == [(CLOSE_UNAUTHORIZED, "token refused")]
    assert client.peer.identity is None


async def test_connect_twice_is_a_bad_request(connected: OpenClient) -> None:
    client = await connected("u1", "student")
    reply = await client.request("connect", token=token("u2", "student"))
    assert refused(reply, "bad_request") and reply["message"] == "already connected"
    assert client.peer.identity is not None and client.peer.identity.sub == "u1"
    assert client.peer.closes == []


async def test_ping_answers_pong_with_the_command_id(connected: OpenClient) -> None:
    client = await connected("u1", "student")
    command = parse_command({"type": "ping", "id": 4242})
    await run_command(client.services, client.peer, command, command.id)
    assert client.peer.sent[-1] == {"type": "pong", "id": 4242}


# -- join and leave -----------------------------------------------------------------------


async def test_join_answers_state_participants_and_position(connected: OpenClient) -> None:
    client = await connected("u1", "student", **STUDENT_A)
    joined = await client.request("join", session="s1")
    assert joined["type"] == "joined" and joined["session"] == "s1"
    assert joined["offset"] == 0 and joined["epoch"] and joined["recovered"] is False
    assert joined["state"] == {"screen": None, "locked": False, "poll": None, "hands": [],
                               "annotations": [], "timer": None, "last_poll": None,
                               "options": {"student_marks": True, "student_pointers": False}}
    assert joined["participants"] == [joined["me"]]
    assert joined["me"]["email"] == STUDENT_A["email"]  # a member sees all of itself
    assert set(client.peer.memberships) == {"s1"}
    again = await client.request("join", session="s1")
    assert refused(again, "bad_request")


async def test_join_of_a_session_the_token_does_not_grant_is_forbidden(
    connected: OpenClient,
) -> None:
    client = await connected("u1", "student", ("s1",))
    assert refused(await client.request("join", session="s2"), "forbidden")
    assert client.peer.memberships == {}
    assert client.services.node.hub.channels() == []


async def test_join_with_since_replays_what_was_missed_before_joined(
    member: OpenClient, connected: OpenClient,
) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    first = await trainer.request("publish", session="s1", event={"kind": "chat", "text": "1"})
    for text in ("2", "3"):
        await trainer.request("publish", session="s1", event={"kind": "chat", "text": text})
    student = await connected("u1", "student", **STUDENT_A)
    since = {"epoch": first["epoch"], "offset": first["offset"]}
    joined = await student.request("join", session="s1", since=since)
    assert joined["recovered"] is True and joined["offset"] == 3
    assert [(f["offset"], f["event"]["text"]) for f in student.peer.replayed] == [
        (2, "2"), (3, "3")]


async def test_a_peer_closing_during_its_join_is_not_left_a_member(
    connected: OpenClient, member: OpenClient,
) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await connected("u1", "student", **STUDENT_A)
    student.peer.request_close(1000, "going away")
    command = parse_command({"type": "join", "id": 1, "session": "s1"})
    await run_command(student.services, student.peer, command, command.id)
    assert student.peer.sent[-1]["type"] == "connected"  # no reply to a closing peer
    assert student.peer.memberships == {}
    assert student.services.node.hub.count("acme:s1") == 1
    presence = await trainer.request("presence", session="s1")
    assert [p["role"] for p in presence["participants"]] == ["trainer"]


async def test_leave_answers_left_and_leaving_twice_is_a_bad_request(
    member: OpenClient,
) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await member("u1", "student", **STUDENT_A)
    left = await student.request("leave", session="s1")
    assert left == {"type": "left", "session": "s1", "id": left["id"]}
    assert student.peer.memberships == {}
    [gone] = trainer.peer.pushes("presence.leave")
    assert gone["participant"]["email"] == STUDENT_A["email"]
    assert refused(await student.request("leave", session="s1"), "bad_request")


# -- publish --------------------------------------------------------------------------------


async def test_publish_before_join_is_a_bad_request(connected: OpenClient) -> None:
    client = await connected("t1", "trainer")
    reply = await client.request("publish", session="s1", event=NAVIGATE)
    assert refused(reply, "bad_request")


async def test_publish_to_a_session_not_granted_is_forbidden(member: OpenClient) -> None:
    client = await member("t1", "trainer")
    reply = await client.request("publish", session="s2", event=NAVIGATE)
    assert refused(reply, "forbidden")


async def test_a_trainers_navigation_is_stored_and_reaches_every_member(
    member: OpenClient,
) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await member("u1", "student", **STUDENT_A)
    published = await trainer.request("publish", session="s1", event=NAVIGATE)
    assert published == {"type": "published", "session": "s1", "epoch": published["epoch"],
                         "offset": 1, "id": published["id"]}
    for client, email in ((trainer, TRAINER["email"]), (student, None)):
        [frame] = client.peer.pushes("event")
        assert frame["offset"] == 1 and frame["epoch"] == published["epoch"]
        assert frame["event"]["kind"] == "screen.navigate"
        assert frame["event"]["screen"] == "intro-2"
        assert frame["event"]["by"]["role"] == "trainer"
        assert frame["event"]["by"].get("email") == email  # only the author sees it all


async def test_an_ephemeral_event_is_published_without_a_position(
    member: OpenClient,
) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await member("u1", "student", **STUDENT_A)
    reply = await trainer.request("publish", session="s1",
                                  event={"kind": "pointer", "x": 0.25, "y": 1})
    assert reply == {"type": "published", "session": "s1", "id": reply["id"]}
    [frame] = student.peer.pushes("event")
    assert "offset" not in frame and frame["event"]["x"] == 0.25


async def test_a_student_may_not_navigate(member: OpenClient) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await member("u1", "student", **STUDENT_A)
    reply = await student.request("publish", session="s1", event=NAVIGATE)
    assert refused(reply, "forbidden")
    assert trainer.peer.pushes("event") == []


async def test_ending_the_session_ends_every_membership_and_refuses_joins(
    member: OpenClient, connected: OpenClient,
) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await member("u1", "student", **STUDENT_A)
    reply = await trainer.request("publish", session="s1", event={"kind": "session.end"})
    assert reply["type"] == "published" and reply["offset"] == 1
    assert trainer.peer.ended == student.peer.ended == ["s1"]
    late = await connected("u2", "student", **STUDENT_B)
    assert refused(await late.request("join", session="s1"), "forbidden")


# -- reads: history, presence, cohort, video ------------------------------------------------


async def test_history_returns_the_stored_event(member: OpenClient) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    student = await member("u1", "student", **STUDENT_A)
    published = await trainer.request("publish", session="s1", event=NAVIGATE)
    history = await student.request("history", session="s1")
    assert history["type"] == "history" and history["session"] == "s1"
    assert history["offset"] == 1 and history["epoch"] == published["epoch"]
    assert history["recovered"] is True
    [entry] = history["events"]
    assert entry["offset"] == 1
    assert entry["event"]["kind"] == "screen.navigate" and entry["event"]["screen"] == "intro-2"


async def test_presence_shows_each_member_what_their_role_may_see(member: OpenClient) -> None:
    trainer = await member("t1", "trainer", **TRAINER)
    sam = await member("u1", "student", **STUDENT_A)
    await member("u2", "student", **STUDENT_B)

    async def emails(client: Client) -> dict[str, str | None]:
        reply = await client.request("presence", session="s1")
        assert reply["type"] == "presence" and reply["session"] == "s1"
        return {p.get("display_name", "?"): p.get("email") for p in reply["participants"]}

    assert await emails(sam) == {"Tessa": None, "Sam": STUDENT_A["email"], "Noor": None}
    assert await emails(trainer) == {"Tessa": TRAINER["email"], "Sam": STUDENT_A["email"],
                                     "Noor": STUDENT_B["email"]}


async def test_cohort_is_forbidden_to_a_student(member: OpenClient) -> None:
    student = await member("u1", "student", **STUDENT_A)
    assert refused(await student.request("cohort", session="s1"), "forbidden")


async def test_cohort_answers_a_trainer_the_rostered_students(
    member: OpenClient, connected: OpenClient,
) -> None:
    roster = {"title": "Heftruck", "trainers": ["t1"], "screens": ["intro", "intro-2"],
              "students": [{"sub": "u1", **STUDENT_A}, {"sub": "u2", **STUDENT_B}]}
    await member("t1", "trainer", **TRAINER)
    await member("u1", "student", **STUDENT_A)
    trainer = await connected("t9", "trainer")
    await trainer.services.node.records.set_roster("acme", "s1", roster)
    table = await trainer.request("cohort", session="s1")
    assert table["type"] == "cohort" and table["session"] == "s1"
    rows = {row["participant"]["sub"]: row for row in table["students"]}
    assert rows["u1"]["online"] is True and rows["u2"]["online"] is False
    assert rows["u2"]["participant"]["email"] == STUDENT_B["email"]
    planner = await connected("p1", "planner")
    observed = await planner.request("cohort", session="s1")
    assert [set(row["participant"]) for row in observed["students"]] == [{"pid", "role"}] * 2


async def test_video_without_credentials_is_unavailable(member: OpenClient) -> None:
    client = await member("t1", "trainer", **TRAINER)
    reply = await client.request("video", session="s1")
    assert refused(reply, "unavailable") and reply["message"] == NOT_CONFIGURED


@pytest.mark.parametrize("kind", ["join", "publish", "presence", "history", "video", "cohort"])
async def test_a_session_the_token_does_not_grant_is_forbidden(
    connected: OpenClient, kind: str
) -> None:
    client = await connected("t1", "trainer", ("s1",))
    reply = await client.request(kind, **{**AFTER_CONNECT[kind], "session": "s2"})
    assert refused(reply, "forbidden")


# -- failures -------------------------------------------------------------------------------


async def test_an_unexpected_failure_answers_internal_without_personal_data(
    member: OpenClient, monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await member("u1", "student", **STUDENT_A)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"presence lookup failed for {STUDENT_A['email']}")

    monkeypatch.setattr(client.services.node.joins, "presence_of", broken)
    handler = JsonLines()
    logger = logging.getLogger("classroom.handlers")
    logger.addHandler(handler)
    try:
        reply = await client.request("presence", session="s1")
    finally:
        logger.removeHandler(handler)
    assert reply == {"type": "error", "code": "internal", "message": "internal error",
                     "id": reply["id"]}
    assert client.peer.closes == []
    [line] = handler.lines
    assert '"error":"RuntimeError"' in line and STUDENT_A["email"] not in line
    assert (await client.request("ping"))["type"] == "pong"  # the connection carries on


@pytest.mark.parametrize("kind", [
    "join",
    "cohort",
    "video",
])
async def test_an_unreachable_data_store_answers_unavailable(
    connected: OpenClient, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    client = await connected("t1", "trainer", **TRAINER)

    async def unreachable(*args: Any, **kwargs: Any) -> None:
        raise DataUnavailable("redis is down")

    monkeypatch.setattr(client.services.node.records.store, "get", unreachable)
    reply = await client.request(kind, **AFTER_CONNECT[kind])
    assert refused(reply, "unavailable"), reply
    assert client.peer.closes == []


async def test_a_join_after_the_users_erasure_is_refused_even_unheard(
    connected: OpenClient,
) -> None:
    """A node that missed the erase control message still refuses the user's next join."""
    client = await connected("u1", "student", **STUDENT_A)
    identity = client.peer.identity
    assert identity is not None
    erased_at = (identity.issued_at or 0.0) + 1.0  # the erasure came after the token
    await client.services.node.records.revoke_tokens("acme", "u1", erased_at)
    reply = await client.request("join", session="s1")
    assert reply["code"] == "unauthorized" and reply["message"] == "token refused"
    assert client.peer.closes == [(CLOSE_UNAUTHORIZED, "token refused")]
    assert "s1" not in client.peer.memberships
