"""The verdict of ``python -m loadtests compare``: the ratio table (ours against the
reference and the ceiling), the per-run checks, and everything printed on stdout.

Reading a finished document only, so the tables can be rendered again from a saved
``compare.json`` and tested on made-up numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtests.compare_plan import TARGETS
from loadtests.ladder import ladder_table

FIXED_RATE = 20.0  # the ladder step compared at the same offered load (in both profiles)

Getter = Callable[[dict[str, Any]], float | None]


def _latency(q: str) -> Getter:
    return lambda r: r["settled"]["latency_ms"][q]


def _ladder(key: str) -> Getter:
    return lambda r: r["ladder"].get(key) if "ladder" in r else None


def _step(rate: float, what: str) -> Getter:
    """A figure of the ladder step at ``rate``: the fan-out at one fixed offered load."""
    def get(result: dict[str, Any]) -> float | None:
        steps = result.get("ladder", {}).get("steps", [])
        step = next((s for s in steps if s["rate"] == rate), None)
        if step is None:
            return None
        value = step["server_cpu_pct"] if what == "cpu" else step["latency_ms"][what]
        return float(value) if value is not None else None
    return get


def _settled(key: str) -> Getter:
    return lambda r: r["settled"][key]


ROWS: list[tuple[str, str, Getter]] = [
    ("classroom", "deliveries/s (same offered load)", _settled("deliveries_per_s")),
    ("classroom", "latency p50 ms", _latency("p50")),
    ("classroom", "latency p99 ms", _latency("p99")),
    ("classroom", "server CPU % of one core", _settled("server_cpu_pct")),
    ("lecture500", "deliveries/s (same offered load)", _settled("deliveries_per_s")),
    ("lecture500", "latency p50 ms", _latency("p50")),
    ("lecture500", "latency p99 ms", _latency("p99")),
    ("lecture500", "server CPU % of one core", _settled("server_cpu_pct")),
    ("fanout", f"at {FIXED_RATE:g} publishes/s ({FIXED_RATE * 501:,.0f} deliveries/s): "
     "latency p50 ms", _step(FIXED_RATE, "p50")),
    ("fanout", f"at {FIXED_RATE:g} publishes/s: latency p99 ms", _step(FIXED_RATE, "p99")),
    ("fanout", f"at {FIXED_RATE:g} publishes/s: server CPU %", _step(FIXED_RATE, "cpu")),
    ("fanout", "max sustainable deliveries/s (p99 <= limit)", _ladder("max_sustainable_per_s")),
    ("fanout", "publishes/s at max sustainable", _ladder("max_sustainable_rate")),
    ("fanout", "max deliveries/s kept up with (>= 95% delivered, any latency)",
     _ladder("max_kept_up_per_s")),
    ("fanout", "peak deliveries/s", _ladder("peak_per_s")),
    ("fanout", "deliveries per server CPU-second (median of the steps kept up)",
     _ladder("per_server_core")),
]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def ratio_rows(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every table row as data: values per target and the two ratios."""
    rows = []
    for scenario, label, get in ROWS:
        runs = results.get(scenario, {})
        values = {t: (get(runs[t]) if t in runs else None) for t in TARGETS}
        rows.append({"scenario": scenario, "measure": label, **values,
                     "ours_per_reference": _ratio(values["ours"], values["reference"]),
                     "ours_per_ceiling": _ratio(values["ours"], values["ceiling"])})
    return rows


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"
    return str(value)


def ratio_table(rows: list[dict[str, Any]], p99_limit_ms: float) -> str:
    """The Markdown ratio table."""
    lines = ["| scenario | measure | ours | reference | ceiling | ours / reference | "
             "ours / ceiling |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        measure = row["measure"].replace("limit", f"{p99_limit_ms:g} ms")
        lines.append(f"| {row['scenario']} | {measure} | {_cell(row['ours'])} | "
                     f"{_cell(row['reference'])} | {_cell(row['ceiling'])} | "
                     f"{_cell(row['ours_per_reference'])} | {_cell(row['ours_per_ceiling'])} |")
    return "\n".join(lines)


def checks_table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Per run: who was online, errors, ordering, and what the generator cost."""
    lines = ["| run | online / target | errors | gaps / duplicates (ours) or out of order "
             "(reference) | connect ms p50 / p99 | generator CPU % | other CPU % |",
             "|---|---|---|---|---|---|---|"]
    for scenario, runs in results.items():
        for target, r in runs.items():
            codes = ", ".join(f"{k} {v}" for k, v in r["errors_by_code"].items())
            if target == "ours":
                order = (f"{r['gaps']} / {r['duplicates']}" if r["gap_check"] == "every client"
                         else "not checked")
            elif target == "reference":
                order = f"{r['out_of_order']} out of order"
            else:
                order = "-"
            lines.append(
                f"| {scenario} {target} | {r['online']} / {r['target']} | {r['errors']}"
                f"{f' ({codes})' if codes else ''} | {order} | {_cell(r['connect_ms']['p50'])}"
                f" / {_cell(r['connect_ms']['p99'])} | {_cell(r['generator_cpu_pct'])} | "
                f"{_cell(r['other_cpu_pct'])} |")
    return "\n".join(lines)


def render(document: dict[str, Any]) -> str:
    """Everything ``compare`` prints on stdout."""
    runs = document["runs"]
    parts = [
        f"## {document['command']} ({document['wall_seconds']} s, "
        f"{document['machine']['cpus']} cores, Python {document['machine']['python']})",
        "",
        "Ratios are ours / other: above 1 is better for deliveries, below 1 is better "
        "for latency and CPU.",
        "",
        ratio_table(document["ratios"], document["p99_limit_ms"]),
    ]
    ladders = {t: r["ladder"] for t, r in runs.get("fanout", {}).items() if "ladder" in r}
    if ladders:
        parts += ["", "Fan-out ladder, 1 + 500 members ((x): not sustained):", "",
                  ladder_table(ladders)]
    parts += ["", checks_table(runs)]
    return "\n".join(parts)
