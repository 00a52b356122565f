"""What every fuzzed frame must get, and the lesson that tells whether the node is unharmed.

:func:`send_and_check` sends one frame and checks the answer against the protocol
(sections 3, 5, 6, 11, 12 and 13): one reply, of the command's type or an ``error``
with a code documented for that command and situation, carrying the frame's
``id`` exactly when it is usable, with a message that never repeats a value;
then the documented close, or a connection that still works.

A :class:`Lesson` is a session ``s1`` with two independent members: an observer
(a trainer, JSON) and a witness (a student, MessagePack). After each example
:meth:`Lesson.check_unharmed` has the observer ``ping`` and read the session's
offset with ``history``; a refused command must have left it where it was (and
sent no event to anyone); then the witness publishes a chat, which must be stored
at the next offset and reach the observer.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from classroom.domain.refusals import RequestRefused
from classroom.protocol.commands import parse_command
from tests.client import Client, Frame
from tests.conftest import RunningServer
from tests.fuzz.strategies import (
    CANARY,
    EPOCH,
    REPLY_OF,
    TOKEN,
    UNIQUE,
    WITNESS,
    Encoding,
    server_view,
    usable_id,
)

FUZZ_SERVER = {"rate_limit_per_second": 100000, "rate_limit_burst": 100000,
               "fanout_budget_scale": 1000}
"""Settings of a fuzzed server: its examples come faster than a person types."""

MAX_FRAME_BYTES = 65536
"""``CLASSROOM_MAX_FRAME_BYTES`` of a fuzzed server (the default): a larger frame is closed 1009."""
PUSHES = frozenset({"event", "presence.join", "presence.leave", "progress"})
ERRORS_OF: dict[str, frozenset[str]] = {
    # section 5 ("Errors:" of each command) and section 11; never internal or unauthorized
    # on a connected client, and never unavailable on the embedded backends but for video
    "connect": frozenset({"bad_request"}),
    "refresh": frozenset({"bad_request", "forbidden"}),
    "join": frozenset({"bad_request", "forbidden"}),
    "leave": frozenset({"bad_request"}),
    "publish": frozenset({"bad_request", "forbidden"}),
    "presence": frozenset({"bad_request", "forbidden"}),
    "history": frozenset({"bad_request", "forbidden", "rate_limited"}),
    "cohort": frozenset({"bad_request", "forbidden"}),
    "video": frozenset({"bad_request", "forbidden", "unavailable"}),
    "ping": frozenset({"bad_request"}),
}
UNDECODABLE = {
    "json": {"frame is not valid JSON", "frame must be an object"},
    "msgpack": {"frame is not valid MessagePack", "frame must be an object",
                "this connection speaks MessagePack: send binary frames"},
}


@dataclass
class Answer:
    """How the server answered one fuzzed frame."""

    frame: dict[Any, Any] | None
    """The frame as the server decoded it (None: not an object of its encoding)."""
    reply: Frame | None
    """The reply; None for a frame too big to be read (closed 1009 unanswered)."""
    closed: int | None = None
    """The close code, when the answer closed the connection."""

    @property
    def refused(self) -> bool:
        """Not carried out: an ``error`` reply, or no reply at all."""
        return self.reply is None or self.reply["type"] == "error"

    @property
    def stored_at(self) -> int | None:
        """The offset of a stored publish."""
        if self.reply is None or self.reply["type"] != "published":
            return None
        offset = self.reply.get("offset")
        return offset if isinstance(offset, int) else None


def is_command(frame: dict[Any, Any]) -> bool:
    """Whether the server's validator takes ``frame`` as a command (the fields' rules)."""
    try:
        parse_command(frame)
    except RequestRefused:
        return False
    return True


async def read_reply(client: Client) -> Frame:
    """The next frame that is not a push; pushes go to the inbox."""
    while True:
        frame = await client.read()
        assert isinstance(frame, dict), frame
        if frame.get("type") not in PUSHES:
            return frame
        client.inbox.append(frame)


def check_error(reply: Frame, frame: dict[Any, Any] | None, codes: frozenset[str]) -> None:
    """An ``error`` reply: a documented code, a message, the ``id`` exactly when usable."""
    assert reply["type"] == "error", reply
    assert reply["code"] in codes, (reply, codes)
    message = reply["message"]
    assert isinstance(message, str) and message, reply
    assert CANARY not in message, reply
    assert set(reply) <= {"type", "code", "message", "id"}, reply
    command_id = usable_id(frame)
    if command_id is None:
        assert "id" not in reply, reply
    else:
        assert reply.get("id") == command_id, reply


async def send_and_check(client: Client, data: str | bytes, encoding: Encoding, *,
                         connected: bool) -> Answer:
    """Send ``data`` and check the answer (and the close) against the protocol.

    ``connected``: whether the client already sent a good ``connect``; before it,
    section 3's table applies. ``Answer.closed`` tells whether the connection is gone
    (4401, or 1009 for a frame over the limit); otherwise it stays open.
    """
    frame = server_view(data, encoding)
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > MAX_FRAME_BYTES:  # section 13: closed 1009, nothing executed, no answer
        seen = len(client.received)
        await client.send_raw(data)
        closed = await client.closed_code()
        assert closed == 1009 and len(client.received) == seen, (closed, client.received[seen:])
        return Answer(frame, None, closed)
    await client.send_raw(data)
    reply = await read_reply(client)
    kind = frame.get("type") if frame is not None else None
    known = isinstance(kind, str) and kind in REPLY_OF
    valid = frame is not None and known and is_command(frame)
    closes = False
    if frame is None or not known:
        check_error(reply, frame, frozenset({"bad_request"}))
        if frame is None:
            assert reply["message"] in UNDECODABLE[encoding], reply
        else:
            assert reply["message"] == "unknown command type", reply
    elif not connected and kind == "connect":
        if reply["type"] != "connected":  # a refused token, or no usable token field
            check_error(reply, frame, frozenset({"unauthorized"}))
            assert reply["message"] == "token refused", reply
            closes = True
        else:
            assert valid and reply["id"] == frame["id"], reply
    elif not valid:
        check_error(reply, frame, frozenset({"bad_request"}))
    elif not isinstance(kind, str):
        raise AssertionError(kind)  # (a valid command has a known type)
    elif not connected:
        check_error(reply, frame, frozenset({"unauthorized"}))
        assert reply["message"] == "send connect first", reply
        closes = True
    elif reply["type"] == "error":
        check_error(reply, frame, ERRORS_OF[kind])
    else:
        assert reply["type"] == REPLY_OF[kind], reply
        assert reply["id"] == frame["id"], reply
    answer = Answer(frame, reply)
    if closes:
        answer.closed = await client.closed_code()
        assert answer.closed == 4401, answer
    return answer


async def still_works(client: Client, token: str, *, connected: bool) -> None:
    """The connection answers as usual: ``connect`` first if it had none, then ``ping``."""
    if not connected:
        assert (await client.connect(token))["type"] == "connected"
    assert (await client.request("ping"))["type"] == "pong"


@dataclass
class Lesson:
    """Session ``s1`` with an observer and a witness, to tell that the node is unharmed."""

    server: RunningServer
    observer: Client
    witness: Client
    epoch: str
    witness_pid: str
    users: itertools.count[int] = field(default_factory=itertools.count)

    async def offset(self) -> int:
        """The newest stored offset of ``s1``, as ``history`` tells the observer."""
        reply = await self.observer.request("history", session="s1", limit=1)
        assert reply["type"] == "history" and reply["epoch"] == self.epoch, reply
        return int(reply["offset"])

    async def cohort(self) -> Frame:
        reply = await self.observer.request("cohort", session="s1")
        assert reply["type"] == "cohort", reply
        reply.pop("id")
        return reply

    def sub(self) -> str:
        """A new user id (or any fresh id)."""
        return f"fz-{next(self.users)}"

    def known(self, token: str) -> dict[str, str]:
        """What the strategies' placeholders stand for in this lesson."""
        return {EPOCH: self.epoch, TOKEN: token, WITNESS: self.witness_pid, UNIQUE: self.sub()}

    async def member(self, role: str, encoding: Encoding) -> tuple[Client, str]:
        """A new user of ``role``, connected (with ``s1`` and ``s2`` granted) and in ``s1``."""
        sub = self.sub()
        token = self.server.token(sub, role, ["s1", "s2"], name=f"Fuzz {sub}")
        client = await Client.open(self.server.ws_url, encoding)
        assert (await client.connect(token))["type"] == "connected"
        joined = await client.request("join", session="s1")
        assert joined["type"] == "joined", joined
        return client, token

    async def check_unharmed(self, before: int, answer: Answer | None) -> None:
        """Another client still gets answers and events; a refusal changed nothing.

        ``before`` is the offset read before the fuzzed frame; ``answer`` is None for a
        frame that got no answer (a close such as 1009 or 1007): nothing stored either.
        """
        assert (await self.observer.request("ping"))["type"] == "pong"
        after = await self.offset()
        stored = answer.stored_at if answer is not None else None
        assert after == (before if stored is None else stored), (before, after, answer)
        if stored is not None:
            assert stored == before + 1, (before, answer)
        text = f"witness after {before}:{after}"
        published = await self.witness.request("publish", session="s1",
                                                event={"kind": "chat", "text": text})
        assert published == {"type": "published", "session": "s1", "epoch": self.epoch,
                             "offset": after + 1, "id": published["id"]}, published
        seen = await self.observer.expect(
            lambda f: f.get("type") == "event" and f["event"].get("text") == text)
        assert seen["offset"] == after + 1, seen
        earlier = self.observer.inbox
        assert all(f.get("type") in PUSHES for f in earlier), earlier
        if stored is not None:  # a stored event reached the other members
            assert [f for f in earlier if f.get("offset") == stored], (answer, earlier)
        if answer is None or answer.refused:  # nothing reached anyone for a refused command
            assert not [f for f in earlier if f.get("type") == "event"], (answer, earlier)
        earlier.clear()
        self.witness.inbox.clear()


    async def absorb(self, offset: int) -> None:
        """Let the observer take the event stored at ``offset`` (a clean-up), and what came
        before it."""
        await self.observer.expect(lambda f: f.get("type") == "event" and f["offset"] == offset)
        self.observer.inbox.clear()


async def open_lesson(server: RunningServer) -> Lesson:
    """Session ``s1`` on screen ``intro``, with an open poll ``q1``, the witness's raised
    hand and annotation (``w-a1``): the state the events' own rules look at."""
    observer = await server.member("t-observer", "trainer", name="Olga Observer")
    witness = await server.client("u-witness", "student", encoding="msgpack",
                                  name="Wim Witness")
    joined = await witness.request("join", session="s1")
    assert joined["type"] == "joined", joined
    for client, event in [
        (observer, {"kind": "screen.navigate", "screen": "intro"}),
        (observer, {"kind": "poll.open", "poll": "q1", "question": "Ready?",
                    "options": ["yes", "no"]}),
        (witness, {"kind": "hand.raise"}),
        (witness, {"kind": "annotation.add", "annotation_id": "w-a1", "screen": "intro",
                   "shape": {"type": "dot"}}),
    ]:
        reply = await client.request("publish", session="s1", event=event)
        assert reply["type"] == "published", reply
    history = await observer.request("history", session="s1", limit=1)
    lesson = Lesson(server, observer, witness, history["epoch"], joined["me"]["pid"])
    await lesson.observer.quiet(0.05)
    lesson.witness.inbox.clear()
    return lesson
