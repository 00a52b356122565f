"""What the fuzzer sends: values wrong in every way, every command and event kind, mutated.

A frame starts from the valid shape of a command (or of an event inside a
``publish``) and gets a mutation (most often one, up to three): a field dropped,
set to a value at or just past its documented bound, set to a value of any other
type, set to ``null``, or an unknown field added. Values include the extremes of each
encoding (huge and negative integers, ``NaN`` and infinities, ``-0.0``), unicode
of every kind (combining marks, emoji, bidi controls, NUL, lone surrogates), and
deep nesting. Frames that do not even decode come from :func:`raw_garbage`.

``encode`` puts a value on the wire the way a careless client would: JSON text
by the standard library (which writes ``NaN`` and ``Infinity``, big integers in
full, and lone surrogates as ``\\ud800`` escapes), MessagePack with lone
surrogates passed through as invalid UTF-8.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any, Literal

import msgpack
import orjson
from hypothesis import strategies as st

Encoding = Literal["json", "msgpack"]
ENCODINGS: tuple[Encoding, ...] = ("json", "msgpack")
Strategy = st.SearchStrategy[Any]

CANARY = "canary-c4f3e9"
"""A value no error message may repeat (messages name fields and rules, never values)."""

EPOCH = "\x00epoch\x00"
TOKEN = "\x00token\x00"
WITNESS = "\x00witness\x00"
UNIQUE = "\x00unique\x00"
"""Placeholders for what only the running lesson knows (its epoch, a fresh token, the
witness's pid, a fresh id): the strategies are built once, :func:`resolve` fills them in."""

INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
EDGE_INTS = [0, 1, -1, 2, 2**31 - 1, -(2**31), 2**53, 2**53 + 1, -(2**53), -(2**53) - 1,
             2**63 - 1, INT64_MIN, UINT64_MAX]
JSON_ONLY_INTS = [2**64, INT64_MIN - 1, 10**30, -(10**30), 10**400]
"""Integers MessagePack cannot carry; JSON text can (orjson reads them as floats, or refuses)."""
EDGE_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.5, 1.0, 1.0000000000000002,
               0.9999999999999999, 5e-324, 1.7976931348623157e308, -1e-300, 100.00000000000001]
EDGE_TEXTS = ["", " ", "\t\n", "\u2003\u3000", "\x00", "\u202e", "\ufeff", "\u200b", "👍", "👍🏽",
              "e\u0301", "🇳🇱", "\u04551", "S1", "null", "true", "0", "[]", "{}", CANARY,
              "p" + "0" * 21, "\ud800", "\udfff", "a\udc00b", "\ud83d"]
FILLERS = ["a", "é", "👍", " ", "\u200b", "e\u0301"]
LENGTHS = [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 129, 199, 200, 201, 499, 500, 501,
           1999, 2000, 2001, 8192, 8193]
"""Lengths at and around every documented string bound (counted in characters)."""

COMMAND_TYPES = ("connect", "refresh", "join", "leave", "publish", "presence", "history",
                 "cohort", "video", "ping")
REPLY_OF = {"connect": "connected", "refresh": "refreshed", "join": "joined", "leave": "left",
            "publish": "published", "presence": "presence", "history": "history",
            "cohort": "cohort", "video": "video", "ping": "pong"}
EVENT_KINDS = ("screen.navigate", "screen.lock", "pointer", "reaction", "annotation.add",
               "annotation.remove", "annotation.clear", "hand.raise", "hand.lower", "chat",
               "chat.remove", "poll.open", "poll.answer", "poll.close", "poll.reveal",
               "session.options", "timer.start", "timer.stop", "progress", "session.end")
ROLES = ("trainer", "student", "planner", "content_manager")


# -- values -------------------------------------------------------------------------------


def ints(encoding: Encoding) -> Strategy:
    """Integers each encoding can carry, edges first; JSON text also carries bigger ones."""
    base = st.sampled_from(EDGE_INTS) | st.integers(INT64_MIN, UINT64_MAX)
    if encoding == "json":
        base = base | st.sampled_from(JSON_ONLY_INTS)
    return base


def floats() -> Strategy:
    """Any float, with NaN, infinities and the bounds of the protocol's numbers first."""
    return st.sampled_from(EDGE_FLOATS) | st.floats()


def repeated(lengths: list[int]) -> Strategy:
    """A string of one of ``lengths`` characters, of ASCII or of wider characters."""
    return st.builds(lambda n, c: (c * n)[:n] if len(c) == 1 else c * max(0, n // len(c)),
                     st.sampled_from(lengths), st.sampled_from(FILLERS))


def texts() -> Strategy:
    """Strings: edge cases, any unicode, lone surrogates, and lengths at every bound."""
    surrogates = st.text(st.characters(categories=["Cs"]) | st.characters(), min_size=1,
                         max_size=6)
    return st.one_of(st.sampled_from(EDGE_TEXTS), st.text(max_size=30), repeated(LENGTHS),
                     surrogates)


def scalars(encoding: Encoding) -> Strategy:
    base = st.one_of(st.none(), st.booleans(), ints(encoding), floats(), texts())
    if encoding == "msgpack":
        base = base | st.binary(max_size=24) | st.builds(
            msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
    return base


def keys(encoding: Encoding) -> Strategy:
    """Map keys: strings; in MessagePack also bytes, and integers (which the server's
    decoder refuses: ``strict_map_key``)."""
    base = texts()
    if encoding == "msgpack":
        base = base | st.binary(max_size=8) | st.integers(-3, 3)
    return base


def nested(depth: int, leaf: Any = 0, *, lists: bool = False) -> Any:
    """``depth`` containers, one inside the other."""
    value = leaf
    for level in range(depth):
        value = [value] if lists and level % 2 else {"a": value}
    return value


def deep(encoding: Encoding) -> Strategy:
    """Deep nesting within what either encoder writes (deeper frames come as raw bytes)."""
    return st.builds(nested, st.integers(1, 400), scalars(encoding), lists=st.booleans())


def values(encoding: Encoding) -> Strategy:
    """Any value the encoding can carry, of any type, nested or not."""
    return st.one_of(
        scalars(encoding),
        st.recursive(scalars(encoding),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(keys(encoding), inner, max_size=4),
                     max_leaves=10),
        deep(encoding),
    )


def strings(low: int, high: int, encoding: Encoding) -> Strategy:
    """A string field of ``low``..``high`` characters: at, inside and past its bounds."""
    lengths = sorted({max(0, low - 1), low, high, high + 1})
    return st.one_of(repeated(lengths), texts(), values(encoding))


# -- commands -------------------------------------------------------------------------------


def session_ids(encoding: Encoding) -> Strategy:
    return st.one_of(
        st.sampled_from(["s1", "s2", "nope", "", "s1 ", " s1", ".s1", "-s1", "_s1", "s1/x",
                         "s1\x00", "\u04551", "S1", "s1\n", "a" * 128, "a" * 129, "s1.",
                         "s1_-."]),
        texts(), values(encoding))


def positions(encoding: Encoding) -> Strategy:
    """``since``: well-formed, with each part at its edges, or anything else."""
    offsets = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, UINT64_MAX]),
                        ints(encoding), values(encoding))
    epochs = st.one_of(st.sampled_from([EPOCH, EPOCH, "", "x", EPOCH + "x", "x" + EPOCH]),
                       texts(), values(encoding))
    return st.one_of(st.fixed_dictionaries({"epoch": epochs, "offset": offsets}),
                     st.fixed_dictionaries({"epoch": epochs}),
                     st.fixed_dictionaries({"offset": offsets}), values(encoding))


@functools.cache
def command_edges(encoding: Encoding) -> dict[str, Strategy]:
    """Per command field: values at and past its bounds, and of other types."""
    return {
        "id": st.one_of(st.sampled_from([2**53, -(2**53), 2**53 + 1, -(2**53) - 1, 0, -1, 1.0,
                                         1.5, True, False, "1", None, [], {}]),
                        ints(encoding)),
        "type": st.one_of(st.sampled_from(["PING", "Ping", " ping", "ping ", "ping\x00",
                                           "join2", "", "connected", "pong", "error",
                                           "event", *COMMAND_TYPES]), values(encoding)),
        "session": session_ids(encoding),
        "since": positions(encoding),
        "limit": st.one_of(st.sampled_from([0, 1, 1000, 1001, -1, 1.0, True, "10", None]),
                           ints(encoding)),
        "token": strings(1, 8192, encoding),
        "client_msg_id": strings(1, 128, encoding),
        "event": values(encoding),
    }


COMMAND_TEMPLATES: dict[str, dict[str, Any]] = {
    # A valid command of every type, for a client in ``s1`` whose token also grants ``s2``.
    "connect": {"type": "connect", "id": 7, "token": TOKEN},
    "refresh": {"type": "refresh", "id": 7, "token": TOKEN},
    "join": {"type": "join", "id": 7, "session": "s2",
             "since": {"epoch": EPOCH, "offset": 0}},
    "leave": {"type": "leave", "id": 7, "session": "s1"},
    "publish": {"type": "publish", "id": 7, "session": "s1",
                "event": {"kind": "chat", "text": "hi"}, "client_msg_id": "m-" + UNIQUE},
    "presence": {"type": "presence", "id": 7, "session": "s1"},
    "history": {"type": "history", "id": 7, "session": "s1", "limit": 5,
                "since": {"epoch": EPOCH, "offset": 0}},
    "cohort": {"type": "cohort", "id": 7, "session": "s1"},
    "video": {"type": "video", "id": 7, "session": "s1"},
    "ping": {"type": "ping", "id": 7},
}


UNKNOWN_FIELDS = st.sampled_from(["extra", "ID", "Type", "sessions", "data", "by", "at",
                                  "offset", "epoch", "kind", "__proto__", "constructor"])


@st.composite
def mutated(draw: st.DrawFn, template: Mapping[Any, Any], edges: Mapping[str, Strategy],
            encoding: Encoding, *, own: frozenset[str] | None = None,
            min_ops: int = 1) -> dict[Any, Any]:
    """``template`` with ``min_ops``..3 mutations: drop, edge, wrong type, null, unknown field.

    ``own`` are the fields the edges should mostly aim at (those of an event's kind).
    """
    frame = dict(template)
    aims = sorted(own if own is not None else edges)
    # One mutation most often, so that the rest of the frame is valid and the one wrong
    # (or edge) value reaches the check it is aimed at.
    for _ in range(draw(st.sampled_from([n for n in (0, 1, 1, 1, 2, 3) if n >= min_ops]))):
        op = draw(st.sampled_from(["edge", "edge", "edge", "drop", "wrong", "null", "unknown"]))
        present = sorted(frame, key=repr)
        if op == "drop" and present:
            frame.pop(draw(st.sampled_from(present)))
        elif op == "edge" and edges:
            aimed = bool(aims) and draw(st.integers(0, 4)) > 0  # four times in five
            name = draw(st.sampled_from(aims if aimed else sorted(edges)))
            frame[name] = draw(edges[name]) if name in edges else draw(values(encoding))
        elif op == "wrong" and present:
            frame[draw(st.sampled_from(present))] = draw(values(encoding))
        elif op == "null" and present:
            frame[draw(st.sampled_from(present))] = None
        else:
            frame[draw(UNKNOWN_FIELDS | keys(encoding))] = draw(values(encoding))
    return frame


# -- events ---------------------------------------------------------------------------------


def shapes(encoding: Encoding) -> Strategy:
    """An annotation's ``shape``: objects at the depth, size and point bounds, and others."""
    return st.one_of(
        st.builds(lambda d: {"type": "path", "d": nested(d - 1)},
                  st.sampled_from([2, 31, 32, 33, 64, 250, 251, 252, 253, 254, 255, 256])
                  | st.integers(1, 300)),
        st.builds(lambda d: {"type": "path", "d": nested(d - 1, lists=True)},
                  st.integers(1, 300)),
        st.builds(lambda n: {"type": "blob", "d": "x" * n}, st.integers(16360, 16400)),
        known_shapes(encoding),
        st.builds(lambda n: {"type": "path", "points": [[0, 0]] * n},
                  st.sampled_from([0, 999, 1000, 1001])),
        st.builds(lambda f: {"type": "dot", "x": f}, floats()),
        st.builds(lambda i: {"type": "dot", "x": i}, ints(encoding)),
        st.dictionaries(keys(encoding), values(encoding), max_size=5),
        values(encoding),
    )


def known_shapes(encoding: Encoding) -> Strategy:
    """Shapes of the kinds the pages draw (circle, stroke, text), at and past their bounds."""
    unit = st.sampled_from([0, 1, 0.0, 1.0, 0.5, -0.001, 1.001]) | floats()
    color = st.sampled_from(["red", "black", "Red", "#c00", ""]) | values(encoding)
    extra = st.dictionaries(st.sampled_from(["color", "width", "fill", "z"]),
                            color | st.sampled_from([1, 12, 0.5, 13]), max_size=2)
    return st.one_of(
        st.builds(lambda x, y, r, more: {"type": "circle", "x": x, "y": y, "r": r, **more},
                  unit, unit, st.sampled_from([0.005, 0.5, 0.0049, 0.51, 1]) | floats(), extra),
        st.builds(lambda n, p, more: {"type": "stroke", "points": [p] * n, **more},
                  st.sampled_from([0, 1, 2, 500, 501]),
                  st.lists(unit, min_size=1, max_size=3), extra),
        st.builds(lambda x, y, text, more: {"type": "text", "x": x, "y": y, "text": text,
                                            **more},
                  unit, unit, st.sampled_from(["a", " ", "t" * 200, "t" * 201]) | st.text(),
                  extra),
    )


@functools.cache
def event_edges(encoding: Encoding) -> dict[str, Strategy]:
    """Per event field: values at and past its bounds (section 7), and of other types."""
    numbers = st.one_of(floats(), st.sampled_from([0, 1, 2, -1, 100, 101, True, False, "0.5"]),
                        ints(encoding))
    return {
        "kind": st.one_of(st.sampled_from([*EVENT_KINDS, "poll.tally", "session.ended", "Chat",
                                           "chat ", "", "hand", "annotation", "progress\x00"]),
                          values(encoding)),
        "screen": strings(1, 200, encoding),
        "locked": st.one_of(st.sampled_from([0, 1, "true", "false", None, []]),
                            values(encoding)),
        "x": numbers,
        "y": numbers,
        "emoji": strings(1, 16, encoding),
        "annotation_id": st.one_of(st.sampled_from(["w-a1", "nope"]), strings(1, 64, encoding)),
        "shape": shapes(encoding),
        "participant": st.one_of(st.sampled_from([WITNESS, "server", "erased"]),
                                 strings(1, 64, encoding)),
        "text": st.one_of(st.sampled_from(["   ", "\u2003\u3000", "\n\t", "\u200b", CANARY]),
                          strings(1, 2000, encoding)),
        "poll": st.one_of(st.just("q1"), strings(1, 64, encoding)),
        "question": strings(1, 500, encoding),
        "options": st.one_of(
            st.lists(st.text(min_size=1, max_size=3), min_size=0, max_size=12),
            st.lists(strings(1, 200, encoding), min_size=2, max_size=3), values(encoding)),
        "option": st.one_of(st.sampled_from([-1, 0, 1, 2, 9, 10, 2**63 - 1, True, 0.0, "0"]),
                            ints(encoding)),
        "completed": st.one_of(st.sampled_from([0, 1, "true", None]), values(encoding)),
        "score": numbers,
        "by": values(encoding),
        "at": numbers,
        "counts": values(encoding),
        "to": st.one_of(st.sampled_from(["trainers", "Trainers", "students", "", None]),
                        values(encoding)),
        "message": st.one_of(st.sampled_from([0, 1, 2, 2**53, 2**53 + 1, -1, 1.0, "1", True]),
                             ints(encoding)),
        "hide_results": st.one_of(st.sampled_from([True, False, 0, 1, "true", None]),
                                  values(encoding)),
        "student_marks": st.one_of(st.sampled_from([True, False, 0, "off", None]),
                                   values(encoding)),
        "student_pointers": st.one_of(st.sampled_from([True, False, 1, "on", None]),
                                      values(encoding)),
        "seconds": st.one_of(st.sampled_from([0, 1, 14400, 14401, -1, 60.0, "60", True]),
                             ints(encoding)),
    }


EVENT_TEMPLATES: dict[str, dict[str, Any]] = {
    # A valid event of every kind; new ids are fresh for every example.
    "screen.navigate": {"kind": "screen.navigate", "screen": "intro"},
    "screen.lock": {"kind": "screen.lock", "locked": True},
    "pointer": {"kind": "pointer", "x": 0.25, "y": 0.5, "screen": "intro"},
    "reaction": {"kind": "reaction", "emoji": "👍"},
    "annotation.add": {"kind": "annotation.add", "annotation_id": "a-" + UNIQUE,
                       "screen": "intro",
                       "shape": {"type": "circle", "x": 0.4, "y": 0.4, "r": 0.05}},
    "annotation.remove": {"kind": "annotation.remove", "annotation_id": "w-a1"},
    "annotation.clear": {"kind": "annotation.clear", "screen": "intro"},
    "hand.raise": {"kind": "hand.raise"},
    "hand.lower": {"kind": "hand.lower", "participant": WITNESS},
    "chat": {"kind": "chat", "text": "hello", "to": "trainers"},
    "chat.remove": {"kind": "chat.remove", "message": 1},
    "poll.open": {"kind": "poll.open", "poll": "q-" + UNIQUE, "question": "Ready?",
                  "options": ["yes", "no"]},
    "poll.answer": {"kind": "poll.answer", "poll": "q1", "option": 0},
    "poll.close": {"kind": "poll.close", "poll": "q1"},
    "poll.reveal": {"kind": "poll.reveal", "poll": "q1"},
    "session.options": {"kind": "session.options", "student_pointers": True},
    "timer.start": {"kind": "timer.start", "seconds": 60},
    "timer.stop": {"kind": "timer.stop"},
    "progress": {"kind": "progress", "screen": "intro", "completed": True, "score": 80},
    "session.end": {"kind": "session.end"},
}


@functools.cache
def commands(encoding: Encoding, *, min_ops: int = 1) -> Strategy:
    """A command of any type, mutated: ``(type, frame)``."""
    return st.sampled_from(sorted(COMMAND_TEMPLATES)).flatmap(
        lambda kind: mutated(COMMAND_TEMPLATES[kind], command_edges(encoding), encoding,
                             own=frozenset(COMMAND_TEMPLATES[kind]) - {"type"},
                             min_ops=min_ops).map(lambda frame: (kind, frame)))


@functools.cache
def events(encoding: Encoding, kinds: tuple[str, ...] = EVENT_KINDS) -> Strategy:
    """An event of one of ``kinds``, mutated: ``(kind, event)``."""
    return st.sampled_from(kinds).flatmap(
        lambda kind: mutated(EVENT_TEMPLATES[kind], event_edges(encoding), encoding,
                             own=frozenset(EVENT_TEMPLATES[kind]) - {"kind"} or None,
                             ).map(lambda event: (kind, event)))


@functools.cache
def publishes(encoding: Encoding, kinds: tuple[str, ...] = EVENT_KINDS) -> Strategy:
    """A ``publish`` of a mutated event, with or without a ``client_msg_id``: ``(kind, frame)``."""
    msg_ids = st.one_of(st.none(), st.sampled_from(["m-" + UNIQUE, "m-shared"]),
                        strings(1, 128, encoding))

    def frame(pair: tuple[str, Any], msg_id: Any) -> tuple[str, dict[str, Any]]:
        kind, event = pair
        command: dict[str, Any] = {"type": "publish", "id": 11, "session": "s1", "event": event}
        if msg_id is not None:
            command["client_msg_id"] = msg_id
        return kind, command

    return st.builds(frame, events(encoding, kinds), msg_ids)


def resolve(value: Any, known: Mapping[str, str]) -> Any:
    """``value`` with the placeholders (:data:`EPOCH` ...) replaced by what ``known`` says."""
    if isinstance(value, str):
        if "\x00" in value:
            for placeholder, actual in known.items():
                value = value.replace(placeholder, actual)
        return value
    if isinstance(value, dict):
        return {resolve(k, known): resolve(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(item, known) for item in value]
    return value


def ends_session(event: Any) -> bool:
    """Whether ``event`` would be taken as ``session.end`` (a MessagePack key may be bytes)."""
    return isinstance(event, dict) and "session.end" in (event.get("kind"), event.get(b"kind"))


# -- frames that do not decode ------------------------------------------------------------------


def raw_garbage(encoding: Encoding) -> Strategy:
    """Frames that are not a valid object of the connection's encoding, or barely are."""
    text = st.one_of(
        st.text(max_size=60),
        st.sampled_from([
            "", " ", "{", "}", "[]", "null", "1", '"x"', "{}", "{,}", '{"type": "ping", "id": 1,}',
            '{"type": "ping", "id": NaN}', '{"type": "ping", "id": Infinity}',
            '{"type": "ping", "id": -Infinity}', '{"type": "ping", "id": 1e400}',
            '{"type": "ping", "id": 1, "x": "\\ud800"}',
            '{"type": "ping", "id": 2, "x": "\\udc00"}', '{"type": "ping\\ud800", "id": 3}',
            '{"type": "ping", "id": 4, "x": "\\ud83d\\u0041"}',
            '\ufeff{"type": "ping", "id": 5}', '{"type": "ping", "id": 6} {"type": "ping"}',
            '{"type": "ping", "id": 7, "id": "x"}', "{'type': 'ping', 'id': 8}",
            '{"type": "ping", "id": 0x10}', '{"type": "ping", "id": 010}',
            '{"type": "ping", "id": 18446744073709551616}', "\x00", "\\ud800",
        ]),
        st.builds(lambda n: "[" * n + "]" * n, st.integers(1, 30000)),
        st.builds(lambda n: '{"a":' * n + "0" + "}" * n, st.integers(1000, 10000)),
        st.builds(lambda n: "[" * n, st.integers(1, 5000)),
    )
    binary = st.one_of(
        st.binary(max_size=60),
        st.sampled_from([b"\xc1", b"\xc1\xc1", b"\x81", b"\x82\xa4type", b"\xd9\x03ab",
                         b"\x81\xa4type\xa4\xff\xfe\xfd\xfc", b"\x81\x01\x02", b"\x90", b"\x80",
                         b"\xc0", b"\x81\xc0\xc0", b"\xc7\x01\x05a", b"\xd6\xff\x00\x00\x00\x01"]),
        st.builds(lambda n: b"\x91" * n + b"\xc0", st.integers(500, 30000)),
        st.builds(lambda n: b"\x81\xa1a" * n + b"\xc0", st.integers(500, 10000)),
        st.builds(lambda v: msgpack.packb(v)[:-1],  # cut short
                  st.dictionaries(st.text(max_size=4), st.integers(-(2**63), 2**64 - 1),
                                  min_size=1, max_size=3)),
    )
    if encoding == "json":
        return text | binary
    return binary | text


# -- the wire -----------------------------------------------------------------------------------


def encode(value: Any, encoding: Encoding) -> str | bytes:
    """``value`` as a careless client would send it (see the module's docstring)."""
    if encoding == "msgpack":
        packed: bytes = msgpack.packb(value, use_bin_type=True, unicode_errors="surrogatepass")
        return packed
    text = json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates: written as \ud800 escapes
        text = json.dumps(value, ensure_ascii=True, allow_nan=True, separators=(",", ":"))
    return text


def server_view(data: str | bytes, encoding: Encoding) -> dict[Any, Any] | None:
    """What the server decodes ``data`` into, or None when it is no object of its encoding.

    The same libraries and options as the server's codec: a frame the server could
    not decode is answered ``bad_request`` without an ``id``.
    """
    try:
        if encoding == "json":
            value = orjson.loads(data)
        elif isinstance(data, str):
            return None
        else:
            value = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        return None
    return value if isinstance(value, dict) else None


def usable_id(frame: Mapping[Any, Any] | None) -> int | None:
    """The ``id`` a reply must carry: an integer (not a bool) within -2^53..2^53, else none."""
    if frame is None:
        return None
    value = frame.get("id")
    if isinstance(value, int) and not isinstance(value, bool) and -(2**53) <= value <= 2**53:
        return value
    return None
