"""Who is in a session, as each viewer may see them, and the announcements of joins and leaves.

A join renders every participant: each (view, presence record) is unpacked and
rendered once, not once per join (a big room's ramp was O(n^2) renders). The
rendered dicts are shared between replies, and never modified.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from classroom.backends.broker import Broker
from classroom.domain.channel import Channel
from classroom.domain.participants import Participant
from classroom.domain.views import View, counts_only, render_participant
from classroom.sessions.backend_calls import BackendCalls
from classroom.sessions.messages import presence_message, unpack_internal
from presence.store import PresenceStore

RENDERED_CACHE_MAX = 20_000
"""Participant renderings kept per session for joins (a few hundred bytes each), then
started afresh; a session's renderings go when the node forgets the session."""


async def announce(broker: Broker, channel: str, kind: str, participant: Participant) -> None:
    """Tell every node's members of ``channel`` that a user joined or left (``kind``)."""
    await broker.publish(channel, presence_message(kind, participant.to_record()), stored=False)


def _no_threshold(channel: str) -> int | None:
    return None


class PresenceViews:
    """The participant lists of sessions, rendered per view, with renderings cached.

    It also keeps, per session served here, how many users were present when last
    asked (adjusted by every join and leave since), so a per-person frame can tell
    whether a student is shown only counts without a store call per frame.
    """

    def __init__(
        self, presence: PresenceStore, call: BackendCalls,
        counts_only_above: Callable[[str], int | None] = _no_threshold,
    ) -> None:
        self._presence = presence
        self._call = call
        self._counts_only_above = counts_only_above
        # channel -> (view, packed presence record) -> (pid, rendering for others)
        self._rendered: dict[str, dict[tuple[View, bytes], tuple[Any, dict[str, Any]]]] = {}
        self._present: dict[str, int] = {}

    async def listing(
        self, channel: Channel, view: View, self_pid: str
    ) -> tuple[list[dict[str, Any]], int]:
        """Who ``view`` may see present, and how many are: a student in a room above the
        tenant's ``presence_counts_only_above`` sees only itself."""
        shown = await self.participants(channel, view, self_pid)
        present = len(shown)
        if counts_only(view, present, self._counts_only_above(channel.name)):
            shown = [entry for entry in shown if entry.get("pid") == self_pid]
        return shown, present

    async def count(self, channel: str) -> int:
        """How many users are present in ``channel`` now (asks the store)."""
        present = len(await self._call(self._presence.participants(channel)))
        self._present[channel] = present
        return present

    def known_count(self, channel: str) -> int:
        """How many users were present when last asked, adjusted by the changes since."""
        return self._present.get(channel, 0)

    def adjust_count(self, channel: str, delta: int) -> None:
        """A join (+1) or leave (-1) announced since the last count; only sessions served
        here are followed (the next count corrects any drift)."""
        if channel in self._present:
            self._present[channel] = max(0, self._present[channel] + delta)

    async def participants(
        self, channel: Channel, view: View, self_pid: str
    ) -> list[dict[str, Any]]:
        """Everyone present in ``channel`` as ``view`` sees them; the asker sees all of itself."""
        entries = await self._call(self._presence.participants(channel.name))
        self._present[channel.name] = len(entries)
        rendered = self._rendered.setdefault(channel.name, {})
        shown_list = []
        for entry in entries:
            key = (view, entry.info)
            cached = rendered.get(key)
            if cached is None:
                record = unpack_internal(entry.info)
                cached = (record.get("pid"), render_participant(record, view, None))
                if len(rendered) >= RENDERED_CACHE_MAX:
                    rendered.clear()
                rendered[key] = cached
            pid, shown = cached
            if pid == self_pid:  # the recipient sees all of its own record
                shown = render_participant(unpack_internal(entry.info), view, self_pid)
            shown_list.append(shown)
        return shown_list

    def forget_renderings(self) -> None:
        """Drop every cached rendering (an erasure must not leave renderings behind)."""
        self._rendered.clear()

    def forget_channel(self, channel: str) -> None:
        """Drop a session's renderings and count: this node no longer serves it."""
        self._rendered.pop(channel, None)
        self._present.pop(channel, None)
        self._presence.forget_channel(channel)
