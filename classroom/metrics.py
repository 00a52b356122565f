"""Prometheus metrics, one registry per app so that several apps can live in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

PUBLISH_TO_WRITE_BUCKETS = (0.001, 0.002, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03,
                            0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Fine around the 25 ms target of docs/performance.md, so its p99 is read off exactly."""


STALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Stops of the event loop: under 10 ms is a busy loop, from 50 ms on members notice."""

HTTP_DROP_REASONS = ("address_cap", "header_timeout", "idle_timeout", "body_timeout")
"""Why the edge closed a connection before an answer (``classroom_http_dropped_total``)."""


class Metrics:
    """The counters a classroom node exports at ``/metrics``."""

    content_type = CONTENT_TYPE_PLAIN_0_0_4

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.connections = Gauge(
            "classroom_connections", "Open WebSocket connections", registry=self.registry
        )
        self.frames_in = Counter(
            "classroom_frames_in", "Commands received, by type", ["type"], registry=self.registry
        )
        self.sessions = Gauge(
            "classroom_sessions", "Sessions with a member on this node", registry=self.registry
        )
        self.frames_out = Counter(
            "classroom_frames_out", "Frames queued to clients, by type", ["type"],
            registry=self.registry,
        )
        self.frames_written = Counter(
            "classroom_frames_written", "Frames written to client sockets", registry=self.registry
        )
        self.backend_errors = Counter(
            "classroom_backend_errors",
            "Commands answered unavailable because Redis (broker, presence, data) failed",
            registry=self.registry,
        )
        self.admission_waiting = Gauge(
            "classroom_admission_waiting",
            "Joins and leaves waiting for a turn (CLASSROOM_ADMISSION_LIMIT at once)",
            registry=self.registry,
        )
        self.mail_outbox = Gauge(
            "classroom_mail_outbox", "E-mails waiting in the outbox", registry=self.registry
        )
        self.mail_dead_letters = Gauge(
            "classroom_mail_dead_letters",
            "E-mails given up on after CLASSROOM_MAIL_MAX_ATTEMPTS failed attempts, kept for "
            "the tenants to see and retry",
            registry=self.registry,
        )
        self.webhook_outbox = Gauge(
            "classroom_webhook_outbox", "Webhook deliveries waiting in the outbox",
            registry=self.registry,
        )
        self.webhook_dead_letters = Gauge(
            "classroom_webhook_dead_letters",
            "Webhook deliveries given up on after CLASSROOM_WEBHOOK_MAX_ATTEMPTS failed "
            "attempts, kept for the tenants to see and retry",
            registry=self.registry,
        )
        self.bad_frames = Counter(
            "classroom_bad_frames", "Frames refused as bad_request", registry=self.registry
        )
        self.rate_limited = Counter(
            "classroom_rate_limited", "Commands refused by the rate limit", registry=self.registry
        )
        self.slow_disconnects = Counter(
            "classroom_slow_disconnects", "Clients closed for not reading (4008)",
            registry=self.registry,
        )
        self.http_dropped = Counter(
            "classroom_http_dropped",
            "Connections the node closed before an answer or a WebSocket upgrade: refused by "
            "the per-address cap, or past the header, idle or body deadline",
            ["reason"], registry=self.registry,
        )
        for reason in HTTP_DROP_REASONS:
            self.http_dropped.labels(reason)
        self.fanout_seconds = Histogram(
            "classroom_fanout_seconds", "Time to queue one publication to local members",
            registry=self.registry,
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )
        self.publish_to_write = Histogram(
            "classroom_publish_to_write_seconds",
            "From an event's publication to the socket write that carried it to this node's "
            "members (members whose socket pushes back are written later, and not counted)",
            registry=self.registry,
            buckets=PUBLISH_TO_WRITE_BUCKETS,
        )

        self.loop_lag = Histogram(
            "classroom_event_loop_lag_seconds",
            "How late a timer due every 100 ms fired: the event loop's stops, which delay "
            "every member's events on this node",
            registry=self.registry, buckets=STALL_BUCKETS,
        )
        self.gc_pause = Histogram(
            "classroom_gc_pause_seconds",
            "Garbage collections and how long each stopped the node (generation 2: full)",
            ["generation"], registry=self.registry, buckets=(0.001, *STALL_BUCKETS),
        )
        self.gc_ramp_freeze = Counter(
            "classroom_gc_ramp_freeze_total",
            "Young collections whose survivors were frozen while connections poured in "
            "(freeze), and hand-backs of the frozen objects once calm (thaw)",
            ["event"], registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
