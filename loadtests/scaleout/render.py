"""The Markdown of a scale-out document: the runs side by side, then Redis per process.

Every figure is measured in the run it appears with; the only arithmetic here
is the mean of each node's figures in a run (the nodes carry equal shares) and
of the repeats in the summary, which says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from typing import Any


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _nodes(run: Mapping[str, Any], key: str, digits: int = 1) -> str:
    """One figure of every node, slash-separated (node 0 holds the publisher)."""
    return " / ".join(_fmt(node.get(key), digits) for node in run["node"])


def _with_net(figures: Mapping[str, Any], key: str, digits: int = 1) -> str:
    """A per-publication figure and, in brackets, the same net of the idle window."""
    return f"{_fmt(figures[key], digits)} ({_fmt(figures[key + '_net_of_idle'], digits)})"


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _node_mean(run: Mapping[str, Any], key: str) -> float | None:
    return _mean(node.get(key) for node in run["node"])


def _server_p99(run: Mapping[str, Any]) -> str:
    return " / ".join(_fmt((node.get("publish_to_write_ms") or {}).get("p99"))
                      for node in run["node"])


def _errors(run: Mapping[str, Any]) -> str:
    ramp = run["errors"] - run["errors_in_window"]
    text = f"{run['errors_in_window']}"
    if not run.get("windows_clean", True):
        text += f" (joins in the windows at seconds {run['seconds_with_joins_in_windows']})"
    if ramp:
        codes = ", ".join(f"{k} {v}" for k, v in run["error_codes"].items())
        text += f" ({ramp} while joining: {codes})"
    return text


def runs_table(runs: list[Mapping[str, Any]]) -> list[str]:
    """One row per run: clients' view, each node's cost, Redis per publication."""
    lines = [
        "| shape | run | nodes x connections (sessions) | publications/s | deliveries/s (clients) "
        "| deliveries/s per node | server CPU % per node | server µs per delivery per node "
        "| latency ms p50 / p99 / max (end to end) | the same in quiet seconds (how many) "
        "| node publish-to-write p99 ms "
        "| Redis primaries CPU µs per publication (net of idle) "
        "| generator CPU % | other CPU % | errors in window |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        lat, calm = run["latency_ms"], run["latency_ms_quiet_seconds"]
        redis = run.get("redis")
        redis_text = ("-" if redis is None
                      else _with_net(redis, "primaries_cpu_us_per_publication"))
        connections = " + ".join(str(node["connections"]) for node in run["node"])
        lines.append(
            f"| {run['shape']} | {run['repeat']} | {run['nodes']} x ({connections}) "
            f"({run.get('rooms', 1)}) "
            f"| {_fmt(run['publications_per_s'], 2)} | {_fmt(run['deliveries_per_s'])} "
            f"| {_nodes(run, 'deliveries_per_s', 0)} | {_nodes(run, 'cpu_pct')} "
            f"| {_nodes(run, 'us_per_delivery', 2)} "
            f"| {_fmt(lat['p50'], 2)} / {_fmt(lat['p99'], 2)} / {_fmt(lat['max'], 2)} "
            f"| {_fmt(calm['p50'], 2)} / {_fmt(calm['p99'], 2)} / {_fmt(calm['max'], 2)} "
            f"({calm['seconds']}) | {_server_p99(run)} | {redis_text} "
            f"| {_fmt(run['generator_cpu_pct'])} "
            f"| {_fmt(run.get('machine', {}).get('other_pct_of_one_core'))} | {_errors(run)} |")
    return lines


def memory_table(runs: list[Mapping[str, Any]]) -> list[str]:
    """Idle cost per node: RSS per joined connection and CPU with nothing published."""
    lines = [
        "| shape | run | RSS MB before clients -> idle (per node) "
        "| RSS KiB per joined idle connection (per node) | idle CPU % per node "
        "| CPU ms per join, node (Redis primaries µs) |",
        "|---|---|---|---|---|---|",
    ]
    for run in runs:
        redis_join = (run.get("redis") or {}).get("primaries_join_cpu_us_per_connection")
        rss = " / ".join(f"{_fmt(n.get('rss_mb_before_clients'))} -> {_fmt(n.get('rss_mb_idle'))}"
                         for n in run["node"])
        lines.append(f"| {run['shape']} | {run['repeat']} | {rss} "
                     f"| {_nodes(run, 'rss_kib_per_connection')} "
                     f"| {_nodes(run, 'idle_cpu_pct', 2)} "
                     f"| {_nodes(run, 'join_cpu_ms_per_connection', 2)} "
                     f"({_fmt(redis_join)}) |")
    return lines


def redis_table(runs: list[Mapping[str, Any]]) -> list[str]:
    """Every Redis process of every cluster run, per publication."""
    lines = [
        "| shape | run | process | role | CPU % (idle window) | CPU µs per publication "
        "(net of idle) | script µs per publication, Redis' own count (net of idle) "
        "| bytes to clients per publication (net of idle) | bytes to its replica per "
        "publication (net of idle) | calls per publication |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        redis = run.get("redis")
        if redis is None:
            continue
        for port, proc in redis["processes"].items():
            if "cpu_pct" not in proc:
                lines.append(f"| {run['shape']} | {run['repeat']} | {port} | {proc['role']} "
                             "| no INFO | | | | | |")
                continue
            calls = ", ".join(f"{k} {v:g}" for k, v in proc["calls_per_publication"].items())
            lines.append(
                f"| {run['shape']} | {run['repeat']} | {port} | {proc['role']} "
                f"| {_fmt(proc['cpu_pct'], 2)} ({_fmt(proc['idle_cpu_pct'], 2)}) "
                f"| {_with_net(proc, 'cpu_us_per_publication')} "
                f"| {_with_net(proc, 'script_us_per_publication')} "
                f"| {_with_net(proc, 'net_output_bytes_per_publication', 0)} "
                f"| {_with_net(proc, 'repl_output_bytes_per_publication', 0)} "
                f"| {calls or '-'} |")
    return lines


def balancer_table(runs: list[Mapping[str, Any]]) -> list[str]:
    """HAProxy's own cost in the runs that go through it."""
    lines = [
        "| shape | run | connections per node (leastconn) | HAProxy CPU % | HAProxy µs per "
        "delivery | HAProxy RSS MB before clients -> idle | HAProxy RSS KiB per client "
        "connection | HAProxy idle CPU % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        b = run.get("balancer")
        if b is None:
            continue
        lines.append(
            f"| {run['shape']} | {run['repeat']} | {_nodes(run, 'connections', 0)} "
            f"| {_fmt(b.get('cpu_pct'))} | {_fmt(b.get('us_per_delivery'), 2)} "
            f"| {_fmt(b.get('rss_mb_before_clients'))} -> {_fmt(b.get('rss_mb_idle'))} "
            f"| {_fmt(b.get('rss_kib_per_connection'))} | {_fmt(b.get('idle_cpu_pct'), 2)} |")
    return lines if len(lines) > 2 else []


def broker_table(rows: list[Mapping[str, Any]]) -> list[str]:
    """The publish script alone, per number of subscribing nodes."""
    if not rows:
        return []
    lines = [
        "| run | subscribed nodes | publications | event bytes | owner shard CPU µs per "
        "publication | script µs per publication (Redis' own count) | bytes to clients per "
        "publication | bytes to its replica per publication | publisher's round trip µs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['repeat']} | {row['subscribers']} | {row['publications']:,} "
            f"| {row['payload_bytes']} | {_fmt(row['cpu_us_per_publication'])} "
            f"| {_fmt(row['script_us_per_publication'])} "
            f"| {_fmt(row['net_output_bytes_per_publication'])} "
            f"| {_fmt(row['repl_output_bytes_per_publication'])} "
            f"| {_fmt(row['wall_us_per_publication'])} |")
    return lines


def summary_table(runs: list[Mapping[str, Any]]) -> list[str]:
    """Per shape: the mean over the nodes of a run, each run's value listed (not averaged,
    so the spread between repeats stays visible)."""
    lines = [
        "| shape | deliveries/s per node | server µs per delivery (mean of the nodes) "
        "| latency p99 ms (quiet seconds) | owner shard CPU µs per publication, net of idle "
        "| owner shard script µs per publication, net of idle | RSS KiB per connection |",
        "|---|---|---|---|---|---|---|",
    ]
    shapes: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        shapes.setdefault(run["shape"], []).append(run)

    def owner(run: Mapping[str, Any], key: str) -> float | None:
        value: float | None = (run.get("redis") or {}).get(key)
        return value

    cpu_key = "owner_shard_cpu_us_per_publication_net_of_idle"
    script_key = "owner_shard_script_us_per_publication_net_of_idle"

    def each(values: Iterable[float | None], digits: int = 1) -> str:
        return " / ".join(_fmt(v, digits) for v in values)

    for name, group in shapes.items():
        lines.append(
            f"| {name} | {each(_node_mean(r, 'deliveries_per_s') for r in group)} "
            f"| {each((_node_mean(r, 'us_per_delivery') for r in group), 2)} "
            f"| {each(r['latency_ms']['p99'] for r in group)} "
            f"({each(r['latency_ms_quiet_seconds']['p99'] for r in group)}) "
            f"| {each(owner(r, cpu_key) for r in group)} "
            f"| {each(owner(r, script_key) for r in group)} "
            f"| {each(_node_mean(r, 'rss_kib_per_connection') for r in group)} |")
    return lines


def render(document: Mapping[str, Any]) -> str:
    """The whole Markdown report."""
    config, machine = document["config"], document["machine"]
    runs = document["runs"]
    first = runs[0]["timeline"] if runs else {}
    head = [
        "# Scale-out: sessions spread over several nodes",
        "",
        f"`{document['command']}`, finished {document['finished_at']} after "
        f"{document['seconds']:g} s, on {machine['cpus']} cores, {machine['memory_gib']} GiB, "
        f"Python {machine['python']}, Redis {document.get('redis_version') or '?'}.",
        "",
        f"{config.get('rooms', 1)} session(s) of {config['members']} members, each with a "
        f"trainer publishing {config['rate']:g} chat messages/s; `cluster3`: "
        f"{config['nodes']} nodes on a Redis Cluster (3 primaries + 3 replicas), the members "
        "dealt round-robin over the nodes; `cluster1`: one node on the same cluster with its "
        "share; `memory1`: one node, embedded broker, the same share; `haproxy3`: as "
        "`cluster3`, every client through HAProxy "
        f"(`deploy/haproxy.cfg`, leastconn). Measured over {config['measure']:g} s of "
        f"publishing (timeline of the first run: {first}); idle window {config['idle']:g} s "
        "before it. Nodes, clients and Redis share the cores. Per node: node 0 holds the "
        "publisher.",
        "",
        "Summary (each run's value, in run order):",
        "",
    ]
    body = [
        "", "## Every run", "", *runs_table(runs),
        "", "## Idle cost per node", "", *memory_table(runs),
        "", "## Redis per process", "", *redis_table(runs), "",
    ]
    script = broker_table(document.get("broker", []))
    if script:
        body += ["## The publish script alone (one publisher, one publication at a time)", "",
                 *script, ""]
    balanced = balancer_table(runs)
    if balanced:
        body += ["## The balancer (HAProxy, deploy/haproxy.cfg)", "", *balanced, ""]
    return "\n".join([*head, *summary_table(runs), *body])
