"""The soak report as Markdown: the verdict, the memory curve, baseline against the end."""

from __future__ import annotations

from typing import Any

CURVE_STRUCTURES = ("connections", "hub_memberships", "stream_runtimes", "presence_renderings")


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _n(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.1f}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def curve_rows(samples: list[dict[str, Any]], every: float = 60.0) -> list[dict[str, Any]]:
    """The samples to show: start, baseline, one per ``every`` seconds of the run, the end."""
    shown: list[dict[str, Any]] = []
    next_t: float | None = None
    for row in samples:
        if row["phase"] != "run":
            shown.append(row)
            next_t = None if row["phase"] != "baseline" else row["t"] + every
            continue
        if next_t is not None and row["t"] + 1.0 >= next_t:
            shown.append(row)
            next_t = row["t"] + every
    return shown


def curve_table(samples: list[dict[str, Any]], every: float = 60.0) -> str:
    """RSS and counts over time, one row per shown sample, nodes side by side (``a / b``)."""
    lines = ["| t (s) | phase | sessions live | RSS MB | gc objects | allocated blocks | "
             "asyncio tasks | connections | memberships | session runtimes | "
             "participant renderings |", "|" + "---|" * 11]
    for row in curve_rows(samples, every):
        nodes = [n for n in row["nodes"] if n is not None]

        def cell(get: Any, nodes: list[dict[str, Any]] = nodes) -> str:
            return " / ".join(get(n) for n in nodes) or "-"

        structures = [cell(lambda n, k=k: _n(n["structures"].get(k))) for k in CURVE_STRUCTURES]
        lines.append(
            f"| {row['t']:.0f} | {row['phase']} | {row['live_sessions']} | "
            f"{cell(lambda n: _mb(n['rss_bytes']))} | {cell(lambda n: _n(n['gc_objects']))} | "
            f"{cell(lambda n: _n(n['allocated_blocks']))} | "
            f"{cell(lambda n: _n(n['asyncio_tasks']))} | " + " | ".join(structures) + " |")
    return "\n".join(lines)


def checks_table(report: dict[str, Any], everything: bool = False) -> str:
    """Baseline against the end, per node: the totals, what failed, and (if asked) all."""
    lines = ["| node | check | kind | baseline | final | change | allowed | |",
             "|---|---|---|---|---|---|---|---|"]
    for index, node in enumerate(report["verdict"]["nodes"]):
        for check in node["checks"]:
            interesting = (check["kind"] == "total" or not check["ok"]
                           or (check["delta"] or 0) != 0)
            if not (everything or interesting):
                continue
            mb = check["name"] == "rss_bytes"
            shown = _mb if mb else _n
            limit = check["limit"]
            lines.append(
                f"| {index} | {check['name']}{' (MB)' if mb else ''} | {check['kind']} | "
                f"{shown(check['baseline'])} | {shown(check['final'])} | "
                f"{shown(check['delta'])} | {'-' if limit is None else shown(limit)} | "
                f"{'ok' if check['ok'] else '**FAIL**'} |")
    return "\n".join(lines)


def growth_table(report: dict[str, Any]) -> str:
    """The classes that gained the most instances, per node."""
    lines = ["| node | class | baseline | final | change |", "|---|---|---|---|---|"]
    for index, node in enumerate(report["verdict"]["nodes"]):
        for name, before, after, delta in node["growth"]:
            lines.append(f"| {index} | `{name}` | {before:,} | {after:,} | +{delta:,} |")
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    """Everything ``soak`` prints at the end."""
    config, v = report["config"], report["verdict"]
    sessions, generator = report["sessions"], report["generator"]
    errors = sum(generator["errors"].values())
    head = (f"## Soak: {v['result']}\n\n"
            f"{config['nodes']} node(s) on the {config['broker']} broker, {config['rooms']} "
            f"rooms x (1 + {config['students']}), sessions of {config['session_seconds']:g} s "
            f"for {config['duration']:g} s after a warm-up; settle {config['settle']:g} s. "
            f"Sessions played {sessions['played']} (ended {sessions['ended']}, abandoned "
            f"{sessions['abandoned']}); generator errors {errors}"
            f"{' ' + str(generator['errors']) if errors else ''}; wall "
            f"{report['wall_seconds']:.0f} s.\n")
    failed = "".join(f"- {line}\n" for line in v["failed"]) or "- none\n"
    return (f"{head}\nFailed checks:\n{failed}\n### Over time\n\n"
            f"{curve_table(report['samples'])}\n\n### Baseline against the end\n\n"
            f"{checks_table(report)}\n\n### Classes that grew most\n\n"
            f"{growth_table(report)}\n")
