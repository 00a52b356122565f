"""What a node allows a client before its request or WebSocket upgrade: deadlines and a cap.

Without these, a client that opens connections and trickles partial request heads
(slowloris) keeps every one of them open for as long as it likes, and one address
can use up the node's file descriptors. :class:`ConnectionGuard` holds the policy
and the count of open connections per client address; ``guarded_http.py`` applies
it to uvicorn's HTTP protocol, and ``server.py``'s WebSocket protocol gives an
upgraded connection's place back when it closes.

Addresses trusted as proxies (uvicorn's ``forwarded_allow_ips``, the
``FORWARDED_ALLOW_IPS`` variable, 127.0.0.1 and ::1 by default) are not capped:
behind a proxy or load balancer every client arrives from its address, and it is
the proxy's job to limit each client. A Unix socket's peer has no address and is
not capped either.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from prometheus_client import Counter
from uvicorn.middleware.proxy_headers import _TrustedHosts

from classroom.domain.addresses import address_key

log = logging.getLogger("classroom.edge.connection_guard")


CAP_WARNING_INTERVAL = 60.0
"""Seconds between two warnings that the per-address cap refused connections."""



@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The guard's settings (``CLASSROOM_HTTP_*``, ``CLASSROOM_MAX_CONNECTIONS_PER_ADDRESS``)."""

    header_timeout: float = 10.0
    """Seconds from the connection (or a later request's first byte) to its complete head."""
    idle_timeout: float = 5.0
    """Seconds without a byte while the node waits for the client: before its first
    request, or for the rest of a request body."""
    max_per_address: int = 1000
    """Open connections (HTTP and WebSocket) per client address; 0: no cap."""


class ConnectionGuard:
    """The limits, and the open connections counted per client address."""

    def __init__(self, limits: HttpLimits, *, trusted: list[str] | str = "127.0.0.1,::1",
                 dropped: Counter | None = None) -> None:
        self.limits = limits
        self._trusted = _TrustedHosts(trusted)
        self._dropped = dropped
        self._open: dict[str, int] = {}
        self._held: dict[asyncio.BaseTransport, str] = {}
        self._warned_at = -CAP_WARNING_INTERVAL

    def admit(self, transport: asyncio.BaseTransport, host: str | None) -> bool:
        """Count a new connection from ``host``; False when its address is at the cap."""
        cap = self.limits.max_per_address
        if cap <= 0 or host is None or host in self._trusted:
            return True
        key = address_key(host)
        count = self._open.get(key, 0)
        if count >= cap:
            self.dropped("address_cap")
            now = time.monotonic()
            if now - self._warned_at >= CAP_WARNING_INTERVAL:
                self._warned_at = now
                # No address in the log (docs/configuration.md: logs hold no client IPs).
                log.warning("connections refused: an address reached the per-address cap "
                            "(behind a proxy, list it in FORWARDED_ALLOW_IPS)",
                            extra={"count": cap})
            return False
        self._open[key] = count + 1
        self._held[transport] = key
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        """The connection closed: give its place back (once; unknown transports are ignored)."""
        key = self._held.pop(transport, None)
        if key is None:
            return
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open_from(self, host: str) -> int:
        """Connections counted for ``host``'s address now."""
        return self._open.get(address_key(host), 0)

    def dropped(self, reason: str) -> None:
        """Count a connection the guard closed."""
        if self._dropped is not None:
            self._dropped.labels(reason).inc()
