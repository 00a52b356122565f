"""PASS or FAIL: does every node come back to its baseline once the sessions have ended?

Three kinds of count, three rules:

- **live structures** (connections, memberships, session runtimes, send queues,
  tasks, ...) and the instances of the classes behind them must be back to
  exactly their baseline: one left over per session is how a leak starts;
- **bounded caches and retained data** (participant renderings, the screens
  cache, and with the embedded backends the stored streams, idempotency keys and
  records, which are kept by design for their retention periods) must stay
  within their documented bound; their growth is reported, not judged against
  the baseline;
- **totals** (RSS, gc-tracked objects, allocated memory blocks) may grow by the
  stated tolerance: the allocator keeps freed arenas, caches warm up, and the
  baseline is taken after a warm-up so that steady growth shows and one-offs do not.
"""

from __future__ import annotations

from typing import Any

from loadtests.soak.config import SoakConfig

LIVE_STRUCTURES = (
    "connections", "registry_users", "registry_budgets", "registry_released",
    "send_queues_nonempty", "send_queue_bytes", "hub_channels", "hub_memberships",
    "hub_buffered_frames", "stream_runtimes", "stream_runtimes_ended", "stream_pending",
    "progress_pending", "progress_timers", "presence_pending", "presence_windows",
    "node_background_tasks",
    "broker_subscriptions", "broker_waiters",
)
LIVE_CLASSES = (
    "classroom.edge.connection.Connection",
    "classroom.edge.send_queue.SendQueue",
    "classroom.edge.client_limits.ClientLimits",
    "classroom.edge.ratelimit.UserBudgets",
    "classroom.sessions.hub.Membership",
    "classroom.sessions.streams.SessionRuntime",
    "classroom.domain.state.SessionState",
    "auth.identity.Identity",
    "_asyncio.Task",
)
BOUNDED = {
    # name: (bound, why it may hold entries after every session ended)
    "presence_renderings": (100_000, "participant renderings for joins, cleared only when "
                                     "full (classroom/sessions/presence.py)"),
    "records_screens_cache": (512, "roster screens per session, least recently used first "
                                   "(classroom/backends/data/records.py)"),
    "key_throttle_addresses": (None, "refused API keys per address, for their window"),
    "broker_memory_streams": (None, "embedded broker: streams kept for the history ttl or "
                                    "an ended session's retention"),
    "broker_memory_idempotency_keys": (None, "embedded broker: client_msg_id keys, "
                                             "CLASSROOM_IDEMPOTENCY_TTL (300 s)"),
    "presence_memory_channels": (None, "embedded presence store"),
    "data_memory_keys": (None, "embedded data store: records kept for their retention"),
    "mail_outbox_memory": (None, "embedded mail outbox"),
}
TOTALS = ("rss_bytes", "gc_objects", "allocated_blocks")


def _check(name: str, kind: str, before: float | None, after: float | None,
           limit: float | None, note: str = "") -> dict[str, Any]:
    delta = after - before if before is not None and after is not None else None
    ok = delta is None or limit is None or delta <= limit
    return {"name": name, "kind": kind, "baseline": before, "final": after, "delta": delta,
            "limit": limit, "ok": ok, "note": note}


def node_checks(config: SoakConfig, baseline: dict[str, Any],
                final: dict[str, Any]) -> list[dict[str, Any]]:
    """Every check of one node, baseline census against final census."""
    checks: list[dict[str, Any]] = []
    before_s, after_s = baseline["structures"], final["structures"]
    for name in LIVE_STRUCTURES:
        checks.append(_check(name, "live", before_s.get(name), after_s.get(name), 0))
    checks.append(_check("asyncio_tasks", "live", baseline["asyncio_tasks"],
                         final["asyncio_tasks"], 0))
    before_t, after_t = baseline["types"], final["types"]
    for name in LIVE_CLASSES:
        checks.append(_check(name, "live", before_t.get(name, 0), after_t.get(name, 0), 0))
    for name, (bound, why) in BOUNDED.items():
        before, after = before_s.get(name), after_s.get(name)
        limit = None if bound is None or before is None else bound - before
        checks.append(_check(name, "bounded", before, after, limit, why))
    rss = baseline.get("rss_bytes")
    if rss is not None:
        allowed = max(config.rss_tolerance_mb * 2**20, rss * config.rss_tolerance_pct / 100)
        checks.append(_check("rss_bytes", "total", rss, final.get("rss_bytes"), allowed,
                             f"max({config.rss_tolerance_mb:g} MiB, "
                             f"{config.rss_tolerance_pct:g}% of baseline)"))
    for name in ("gc_objects", "allocated_blocks"):
        before = baseline[name]
        checks.append(_check(name, "total", before, final[name],
                             before * config.objects_tolerance_pct / 100,
                             f"{config.objects_tolerance_pct:g}% of baseline"))
    return checks


def growth(baseline: dict[str, Any], final: dict[str, Any], top: int = 12) -> list[list[Any]]:
    """The classes with the most more instances at the end than at the baseline."""
    before, after = baseline["types"], final["types"]
    deltas = [[name, before.get(name, 0), count, count - before.get(name, 0)]
              for name, count in after.items()]
    deltas.sort(key=lambda row: -row[3])
    return [row for row in deltas[:top] if row[3] > 0]


def verdict(config: SoakConfig, baselines: list[dict[str, Any] | None],
            finals: list[dict[str, Any] | None]) -> dict[str, Any]:
    """PASS when every node passes every check; the failed checks, and per node all."""
    nodes: list[dict[str, Any]] = []
    failed: list[str] = []
    for index, (baseline, final) in enumerate(zip(baselines, finals, strict=True)):
        if baseline is None or final is None:
            failed.append(f"node {index}: no census (is CLASSROOM_DEBUG_CENSUS on?)")
            nodes.append({"checks": [], "growth": []})
            continue
        checks = node_checks(config, baseline, final)
        failed += [f"node {index}: {c['name']} {c['baseline']} -> {c['final']}"
                   for c in checks if not c["ok"]]
        nodes.append({"checks": checks, "growth": growth(baseline, final)})
    return {"result": "FAIL" if failed else "PASS", "failed": failed, "nodes": nodes}
