"""``python -m loadtests run ...``: parse flags over a scenario preset, run, write reports.

Flags left out keep the preset's value, so ``--scenario lecture --students 500``
is the lecture shape at a quarter of its size. The signing secret is better
passed through the environment than as a flag (flags show up in ``ps``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from loadtests.plan import check_url, resolve_credentials
from loadtests.report import markdown_table, summary
from loadtests.runner import Options, default_progress, run
from loadtests.scenarios import ENCODINGS, PRESETS, build_scenario

# flag -> (Scenario field, type, help)
SCENARIO_FLAGS: dict[str, tuple[str, type, str]] = {
    "--rooms": ("rooms", int, "live sessions, one trainer each"),
    "--students": ("students", int, "students per room"),
    "--duration": ("duration", float, "seconds from the first connect to the stop"),
    "--connect-rate": ("connect_rate", float, "new connections per second during ramp-up"),
    "--navigate-every": ("navigate_every", float, "seconds between a trainer's navigations"),
    "--pointer-hz": ("trainer_pointer_hz", float, "trainer pointer events per second"),
    "--student-pointers": ("student_pointer_per_second", float,
                           "student pointer events per second per room"),
    "--chat-rate": ("chat_per_second", float, "chat messages per second per room"),
    "--chat-bytes": ("chat_bytes", int, "pad chat messages to this many characters"),
    "--progress-every": ("progress_every", float, "seconds between a student's progress reports"),
    "--poll-every": ("poll_every", float, "seconds between polls (0: none)"),
    "--poll-open": ("poll_open", float, "seconds a poll stays open"),
    "--poll-answers": ("poll_answer_fraction", float, "share of students answering a poll"),
    "--annotation-rate": ("annotation_per_second", float, "annotations per second per room"),
    "--annotation-bytes": ("annotation_bytes", int, "size of each annotation shape"),
    "--reconnect-every": ("reconnect_every", float,
                          "mean seconds between one client's reconnects (0: never)"),
    "--storms": ("storms", int, "how often every client drops and rejoins at once"),
    "--storm-spread": ("storm_spread", float, "seconds within which storm clients come back"),
    "--slow-fraction": ("slow_fraction", float, "share of students that stop reading"),
    "--seed": ("seed", int, "random seed"),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run a load test against a server")
    run_parser.add_argument("--url", default="ws://127.0.0.1:8000/ws")
    run_parser.add_argument("--scenario", default="classroom", choices=sorted(PRESETS))
    run_parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                            help="client processes (default: one per core)")
    for flag, (_, kind, text) in SCENARIO_FLAGS.items():
        run_parser.add_argument(flag, type=kind, default=None, help=text)
    run_parser.add_argument("--encoding", choices=ENCODINGS, default=None)
    run_parser.add_argument("--join", action=argparse.BooleanOptionalAction, default=None,
                            help="join a session after connecting (idle: --no-join)")
    run_parser.add_argument("--tenant", help="tenant id (default: $LOADTEST_TENANT or acme)")
    run_parser.add_argument("--secret", help="tenant signing secret (default: $LOADTEST_SECRET, "
                            "else the tenant's first secret in $CLASSROOM_TENANTS)")
    run_parser.add_argument("--key-index", type=int, default=None,
                            help="send kid=<index> naming the secret's place at the server")
    run_parser.add_argument("--server-pid", type=int, default=None,
                            help="server process to sample (default: the port's listener)")
    run_parser.add_argument("--json", type=Path, help="write the full report here")
    run_parser.add_argument("--plot", type=Path, help="write a PNG of the timeline here")
    run_parser.add_argument("--quiet", action="store_true", help="no live progress line")
    run_parser.add_argument("--allow-non-loopback", action="store_true",
                            help="permit a target that is not 127.0.0.0/8 or ::1 "
                            "(only ever a server you own)")
    table = commands.add_parser("table", help="a Markdown table of JSON reports")
    table.add_argument("reports", nargs="+", type=Path, help="reports written with --json")
    reference = commands.add_parser("serve-reference",
                                    help="(not implemented yet) python-socketio reference server")
    reference.add_argument("--port", type=int, default=8100)
    reference.add_argument("--redis-url", default=None)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for flag, (name, _, _) in SCENARIO_FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            values[name] = value
    if args.encoding is not None:
        values["encoding"] = args.encoding
    if args.join is not None:
        values["join"] = args.join
    return values


def _run(args: argparse.Namespace) -> int:
    try:
        scenario = build_scenario(args.scenario, _overrides(args))
        check_url(args.url, args.allow_non_loopback)
        credentials = resolve_credentials(args.tenant, args.secret, args.key_index)
        if args.processes < 1:
            raise ValueError("--processes must be >= 1")
    except ValueError as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 2
    options = Options(url=args.url, credentials=credentials,
                      processes=min(args.processes, scenario.clients),
                      server_pid=args.server_pid,
                      progress=None if args.quiet else default_progress())
    report = run(scenario, options)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot is not None:
        from loadtests.plot import write_plot  # matplotlib is imported only when asked

        write_plot(report, args.plot)
    print(summary(report))
    return 0 if report["connections"]["connects"] else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m loadtests``."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "table":
        reports = {path.stem: json.loads(path.read_text()) for path in args.reports}
        print(markdown_table(reports))
        return 0
    print(
        "loadtests: serve-reference (the python-socketio reference server) is not "
        "implemented yet; see the TODO in loadtests/README.md",
        file=sys.stderr,
    )
    return 2
