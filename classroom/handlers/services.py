"""What the command handlers need of the node: the session layer, video, and two settings."""

from __future__ import annotations

from dataclasses import dataclass

from classroom.integrations.video import VideoGateway
from classroom.sessions.node import Node


@dataclass(frozen=True, slots=True)
class Services:
    """The node's parts the handlers call, shared by every connection of a process."""

    node: Node
    video: VideoGateway
    token_leeway: float
    """Seconds of clock skew allowed on a connect token's times."""
    ping_interval: int
    """Seconds between the client's pings, announced in ``connected``."""
    refresh_before: float = 60.0
    """Seconds before ``exp`` a client should send ``refresh``, announced in ``connected``."""
    history_limit_max: int = 1000
    """Events one ``history`` reply carries at most (its ``limit`` default and cap)."""
