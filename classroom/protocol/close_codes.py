"""WebSocket close codes of the protocol (docs/protocol.md, section 7)."""

from __future__ import annotations

CLOSE_NORMAL = 1000
"""The session ended, or the client left."""

CLOSE_RESTART = 1012
"""The node is restarting: reconnect (elsewhere) and recover with ``since``."""

CLOSE_SLOW = 4008
"""The client read too slowly: its send queue overflowed."""

CLOSE_BAD_CLIENT = 4400
"""Too many bad frames."""

CLOSE_UNAUTHORIZED = 4401
"""No valid token (never sent, refused, or expired)."""

CLOSE_TOO_MANY_CONNECTIONS = 4429
"""The user already has as many connections on this node as it allows: close one first."""

CLOSE_FORBIDDEN = 4403
"""Disconnected by the tenant's back end, or the user's data was erased: do not reconnect."""
