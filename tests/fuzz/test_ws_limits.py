"""Fuzzed frames at the connection's limits: 1009 too big, 1007 not UTF-8, 4400 too many bad.

Section 12 (close codes) and 13 (limits), against a real server, in both encodings,
before and after ``connect``; after each example the node is unharmed and nothing
was stored (:meth:`~tests.fuzz.harness.Lesson.check_unharmed`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.client import Client
from tests.conftest import ServerFactory
from tests.fuzz import strategies as s
from tests.fuzz.harness import (
    FUZZ_SERVER,
    MAX_FRAME_BYTES,
    Lesson,
    is_command,
    open_lesson,
    send_and_check,
    still_works,
)
from tests.fuzz.profiles import TIMEOUT, fuzz_settings

pytestmark = TIMEOUT

Property = Callable[..., Any]
"""A property made for one encoding (Hypothesis runs it; pytest-asyncio gives it a loop)."""
LIMIT = MAX_FRAME_BYTES
STRIKES = 20
"""``CLASSROOM_BAD_FRAMES_LIMIT``, the default."""


@pytest.fixture
async def lesson(start_server: ServerFactory) -> AsyncIterator[Lesson]:
    server = await start_server(**FUZZ_SERVER)
    assert server.settings.max_frame_bytes == LIMIT
    assert server.settings.bad_frames_limit == STRIKES
    lesson = await open_lesson(server)
    yield lesson
    await lesson.observer.close()
    await lesson.witness.close()


async def a_client(lesson: Lesson, encoding: s.Encoding, connected: bool) -> tuple[Client, str]:
    token = lesson.server.token(lesson.sub(), "student")
    client = await Client.open(lesson.server.ws_url, encoding)
    if connected:
        assert (await client.connect(token))["type"] == "connected"
    return client, token


def padded_ping(size: int, filler: str, encoding: s.Encoding) -> str | bytes:
    """A ``ping`` of ``size`` bytes (UTF-8 for JSON), padded in an unknown field.

    Exactly ``size``, but for the two sizes a MessagePack string's longer length
    prefix skips (at 64 KiB of padding): then two bytes more.
    """
    def frame(pad: str) -> str | bytes:
        value = {"type": "ping", "id": 1, "pad": pad}
        return orjson.dumps(value).decode() if encoding == "json" else msgpack.packb(value)

    def length(pad: str) -> int:
        data = frame(pad)
        return len(data.encode() if isinstance(data, str) else data)

    wide = filler * max(0, (size - length("")) // len(filler.encode()) - 8)
    pad = wide + "x" * max(0, size - length(wide))
    while length(pad) > size:  # a longer length prefix (MessagePack) ate the difference
        pad = pad[:-1]
    pad += "x" * (size - length(pad))
    assert size <= length(pad) <= size + 2, (size, length(pad))
    return frame(pad)


def oversized_frames(encoding: s.Encoding) -> Property:
    """Frames around and past 64 KiB: up to the limit answered, past it closed 1009 unanswered."""

    @fuzz_settings(40)
    @given(size=st.one_of(st.sampled_from([LIMIT - 1, LIMIT, LIMIT + 1]),
                          st.integers(LIMIT - 256, LIMIT + 256), st.integers(LIMIT, 4 * LIMIT)),
           filler=st.sampled_from(["x", "é", "👍", "\u200b"]), connected=st.booleans())
    async def test(lesson: Lesson, size: int, filler: str, connected: bool) -> None:
        client, token = await a_client(lesson, encoding, connected)
        payload = padded_ping(size, filler, encoding)
        size = len(payload.encode() if isinstance(payload, str) else payload)
        before = await lesson.offset()
        answer = await send_and_check(client, payload, encoding, connected=connected)
        assert (answer.closed == 1009) == (size > LIMIT), answer  # 1009 unanswered: see there
        if answer.closed is None:
            await still_works(client, token, connected=connected)
            await client.close()
        await lesson.check_unharmed(before, None)

    return test


INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xc1\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
                b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\x80", b"\xc3"]
"""Bytes that are no UTF-8: invalid bytes, overlong forms, surrogates, past U+10FFFF, cut short."""


def not_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return True
    return False


def invalid_text_frames(encoding: s.Encoding) -> Property:
    """Text frames that are not UTF-8 close 1007 unanswered (section 12), whatever is around."""

    @fuzz_settings(40)
    @given(bad=st.sampled_from(INVALID_UTF8) | st.binary(min_size=1, max_size=64).filter(not_utf8),
           prefix=st.sampled_from([b"", b'{"type": "ping", "id": 1, "x": "', b"hello "]),
           suffix=st.sampled_from([b"", b'"}', b"\xc3\xa9"]), connected=st.booleans())
    async def test(lesson: Lesson, bad: bytes, prefix: bytes, suffix: bytes,
                   connected: bool) -> None:
        client, _ = await a_client(lesson, encoding, connected)
        seen = len(client.received)
        before = await lesson.offset()
        await client.ws.send(prefix + bad + suffix, text=True)
        assert await client.closed_code() == 1007
        assert len(client.received) == seen, client.received[seen:]
        await lesson.check_unharmed(before, None)

    return test


def strikes(encoding: s.Encoding, *, connected: bool) -> st.SearchStrategy[str | bytes]:
    """Frames answered ``bad_request`` that count as bad frames (section 11).

    Before ``connect``, a ``connect`` of any shape is refused with 4401 instead, and a
    valid command too: those are left out.
    """
    def strike(data: str | bytes) -> bool:
        frame = s.server_view(data, encoding)
        kind = frame.get("type") if frame is not None else None
        if frame is None or not (isinstance(kind, str) and kind in s.REPLY_OF):
            return True
        return not is_command(frame) and (connected or kind != "connect")

    frames = st.one_of(
        s.raw_garbage(encoding),
        s.commands(encoding).map(lambda command: s.encode(command[1], encoding)))
    return frames.filter(strike)


HARMLESS: list[dict[str, Any]] = [
    # Answered, refused or not, but no bad frames: they never count as strikes.
    {"type": "ping"},
    {"type": "leave", "session": "s9"},  # bad_request: not joined
    {"type": "cohort", "session": "s9"},  # forbidden: not granted
    {"type": "history", "session": "s1", "limit": 1},
    {"type": "publish", "session": "s1", "event": {"kind": "chat", "text": "x"}},  # not joined
]


def bad_frames_close_4400(encoding: s.Encoding) -> Property:
    """The 20th bad frame within a minute closes 4400; refused commands between do not count."""

    @fuzz_settings(12)
    @given(data=st.data(), connected=st.booleans())
    async def test(lesson: Lesson, data: st.DataObject, connected: bool) -> None:
        client, token = await a_client(lesson, encoding, connected)
        frames = data.draw(st.lists(strikes(encoding, connected=connected),
                                    min_size=STRIKES, max_size=STRIKES), label="bad frames")
        between = data.draw(st.lists(st.tuples(st.integers(0, STRIKES - 2),
                                               st.sampled_from(HARMLESS)), max_size=6)
                            if connected else st.just([]), label="harmless commands")
        before = await lesson.offset()
        for index, payload in enumerate(frames):
            await client.send_raw(payload)
            reply = await client.read()
            assert reply["type"] == "error" and reply["code"] == "bad_request", reply
            if index < STRIKES - 1:
                for _, command in [c for c in between if c[0] == index]:
                    answer = await client.request(command["type"], **{
                        k: v for k, v in command.items() if k != "type"})
                    assert answer["type"] != "error" or answer["code"] in (
                        "bad_request", "forbidden"), answer
        seen = len(client.received)
        assert await client.closed_code() == 4400
        assert len(client.received) == seen, client.received[seen:]
        assert client.ws.close_reason == "too many bad frames"
        await lesson.check_unharmed(before, None)
        # The same user may come back at once: the strikes were this connection's.
        again, _ = await a_client(lesson, encoding, connected=False)
        await still_works(again, token, connected=False)
        await again.close()

    return test


test_oversized_frames_close_1009_json = oversized_frames("json")
test_oversized_frames_close_1009_msgpack = oversized_frames("msgpack")
test_invalid_utf8_text_closes_1007_json = invalid_text_frames("json")
test_invalid_utf8_text_closes_1007_msgpack = invalid_text_frames("msgpack")
test_bad_frames_close_4400_json = bad_frames_close_4400("json")
test_bad_frames_close_4400_msgpack = bad_frames_close_4400("msgpack")
