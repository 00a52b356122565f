"""``python -m loadtests run|table|compare|ceiling|soak|scaleout|joincost|serve-reference|...``.

(``serve-reference`` and ``serve-ceiling`` are the servers ``compare`` and ``ceiling`` start.)

``run``: parse flags over a scenario preset, run, write reports. Flags left out
keep the preset's value, so ``--scenario lecture --students 500`` is the lecture
shape at a quarter of its size. The signing secret is better passed through the
environment than as a flag (flags show up in ``ps``).

``compare``, ``ceiling``, ``soak``, ``scaleout`` and ``joincost`` start the servers they
measure themselves (see ``loadtests/compare.py``, ``loadtests/soak/``,
``loadtests/scaleout/`` and ``loadtests/joincost.py``);
``serve-reference`` and ``serve-ceiling`` run those servers in the foreground.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtests.drivers import DRIVERS
from loadtests.plan import check_url, resolve_credentials
from loadtests.report import markdown_table, summary
from loadtests.runner import Options, default_progress, run
from loadtests.scenarios import ENCODINGS, PRESENCE_MODES, PRESETS, TALLY_MODES, build_scenario


def rates(text: str) -> tuple[float, ...]:
    """``10,20,40`` -> (10.0, 20.0, 40.0)."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one rate")
    return values


# flag -> (Scenario field, type, help)
SCENARIO_FLAGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
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
    "--fanout-rates": ("fanout_rates", rates,
                       "fan-out ladder: the trainer's chat rates, comma-separated"),
    "--fanout-step": ("fanout_step", float, "seconds per fan-out ladder step"),
    "--fanout-wait-max": ("fanout_wait_max", int,
                          "seconds the ladder may wait for the join storm to drain"),
    "--steady-rate": ("steady_rate", float,
                      "a trainer's chat per second on a fixed schedule (0: none)"),
    "--steady-from": ("steady_from", float, "seconds into the run the steady chat starts"),
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
    run_parser.add_argument("--presence", choices=PRESENCE_MODES, default=None,
                            help="diff: announce presence.diff (default); each: per-person "
                                 "presence frames, as old clients get")
    run_parser.add_argument("--tallies", choices=TALLY_MODES, default=None,
                            help="coalesced: announce poll.tally.coalesced (default); each: "
                                 "a poll.tally per answer, as old clients get")
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
    run_parser.add_argument("--driver", choices=DRIVERS, default="classroom",
                            help="the target's protocol: classroom (ours), socketio (the "
                            "reference, --url ws://HOST:PORT/socket.io) or raw (the ceiling)")
    table = commands.add_parser("table", help="a Markdown table of JSON reports")
    table.add_argument("reports", nargs="+", type=Path, help="reports written with --json")

    compare = commands.add_parser(
        "compare", help="ours vs the python-socketio reference vs the raw websockets ceiling")
    compare.add_argument("--quick", action="store_true", help="the short version (< 3 minutes)")
    compare.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    compare.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                         help="client processes (default: one per core)")
    compare.add_argument("--targets", default="ours,reference,ceiling",
                         help="comma-separated subset of ours,reference,ceiling")
    compare.add_argument("--scenarios", default="classroom,lecture500,fanout",
                         help="comma-separated subset of classroom,lecture500,fanout")
    compare.add_argument("--p99-limit-ms", type=float, default=100.0,
                         help="latency p99 above which a fan-out step is not sustained")
    compare.add_argument("--json", type=Path, default=None,
                         help="where to write the results (default: loadtests/results/"
                         "compare.json)")
    compare.add_argument("--reports", type=Path, default=None,
                         help="also write every run's full report into this directory")
    compare.add_argument("--verbose", action="store_true", help="live progress of every run")
    compare.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                         help="before each run, wait up to this long for the machine to be "
                         "nearly idle (it is shared)")

    ceiling = commands.add_parser(
        "ceiling", help="deliveries/s of a bare websockets broadcast() server on this machine")
    ceiling.add_argument("--clients", type=int, default=500,
                         help="connections in the room: all receive every message, one "
                         "publishes")
    ceiling.add_argument("--rates", type=rates, default=None,
                         help="the publisher's ladder of rates (default: as compare)")
    ceiling.add_argument("--step", type=float, default=3.0, help="seconds per ladder step")
    ceiling.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    ceiling.add_argument("--p99-limit-ms", type=float, default=100.0)
    ceiling.add_argument("--json", type=Path, help="write the result here")
    ceiling.add_argument("--verbose", action="store_true", help="live progress")

    _soak_parser(commands)
    _scaleout_parser(commands)
    _joincost_parser(commands)

    reference = commands.add_parser(
        "serve-reference", help="run the python-socketio reference server (CLASSROOM_TENANTS)")
    reference.add_argument("--host", default="127.0.0.1")
    reference.add_argument("--port", type=int, default=8100)
    reference.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    reference.add_argument("--prefix", default="loadtest-reference",
                           help="Redis key prefix and pub/sub channel prefix")
    bare = commands.add_parser("serve-ceiling", help="run the bare websockets broadcast server")
    bare.add_argument("--host", default="127.0.0.1")
    bare.add_argument("--port", type=int, default=8200)
    return parser


# flag -> (SoakConfig field, type, help)
SOAK_FLAGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "--duration": ("duration", float, "seconds of sessions in a loop, after the warm-up"),
    "--rooms": ("rooms", int, "rooms side by side, each one session after another"),
    "--students": ("students", int, "students per session (plus one trainer)"),
    "--session-seconds": ("session_seconds", float, "how long each session runs"),
    "--nodes": ("nodes", int, "server processes sharing Redis (1 with --broker memory)"),
    "--broker": ("broker", str, "redis (the production shape) or memory"),
    "--redis-url": ("redis_url", str, "the Redis the nodes share"),
    "--abandon-every": ("abandon_every", int,
                        "every n-th session ends by everyone leaving, not session.end (0: never)"),
    "--sample-every": ("sample_every", float, "seconds between samples of every node"),
    "--settle": ("settle", float, "idle seconds before the baseline and before the final "
                 "sample (>= 60 lets released fan-out budgets go)"),
    "--warmup-cycles": ("warmup_cycles", int, "sessions per room before the baseline"),
    "--rss-tolerance-mb": ("rss_tolerance_mb", float, "allowed RSS growth in MiB ..."),
    "--rss-tolerance-pct": ("rss_tolerance_pct", float, "... or in % of the baseline"),
    "--objects-tolerance-pct": ("objects_tolerance_pct", float,
                                "allowed growth of gc objects and allocated blocks, in %"),
    "--seed": ("seed", int, "random seed"),
}


def _soak_parser(commands: Any) -> None:
    soak = commands.add_parser(
        "soak", help="sessions start, run and end in a loop; RSS and live objects must "
        "come back to the baseline (starts its own nodes)")
    for flag, (_, kind, text) in SOAK_FLAGS.items():
        soak.add_argument(flag, type=kind, default=None, help=text)
    soak.add_argument("--json", type=Path, help="write the full report here")
    soak.add_argument("--markdown", type=Path, help="write the Markdown summary here")
    soak.add_argument("--quiet", action="store_true", help="no line per sample")


def _soak(args: argparse.Namespace, argv: list[str] | None) -> int:
    from loadtests.soak.config import SoakConfig
    from loadtests.soak.render import render
    from loadtests.soak.runner import run_soak

    values = {name: getattr(args, flag.lstrip("-").replace("-", "_"))
              for flag, (name, _, _) in SOAK_FLAGS.items()}
    try:
        config = SoakConfig(**{k: v for k, v in values.items() if v is not None})
        config.validate()
        check_url(config.redis_url.replace("redis://", "ws://", 1), False)
    except ValueError as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "loadtests", *(sys.argv[1:] if argv is None else argv)])
    try:
        report = run_soak(config, command, progress=None if args.quiet else sys.stderr)
    except RuntimeError as exc:
        print(f"loadtests soak: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    print(text)
    return 0 if report["verdict"]["result"] == "PASS" else 1


# flag -> (ScaleoutConfig field, type, help)
SCALEOUT_FLAGS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "--nodes": ("nodes", int, "nodes sharing the big room (the cluster3 shape)"),
    "--members": ("members", int, "members of each session: one trainer, the rest students; "
                  "with one session the single-node shapes get members / nodes"),
    "--rooms": ("rooms", int, "sessions side by side, each with a trainer publishing at "
                "--rate; the single-node shapes get rooms / nodes of them"),
    "--rate": ("rate", float, "each trainer's chat messages per second"),
    "--connect-rate": ("connect_rate", float, "new connections per second while filling"),
    "--settle": ("settle", float, "seconds after the last join before the idle window"),
    "--idle": ("idle", float, "seconds connected with nothing published (background cost)"),
    "--measure": ("measure", float, "seconds of publishing that are measured"),
    "--repeats": ("repeats", int, "how often each shape is measured (interleaved)"),
    "--warmup": ("warmup", int, "clients per node that join another session first, so the "
                 "run starts on warm Redis connections (0: none)"),
    "--processes": ("processes", int, "client processes (default: one per core)"),
    "--broker-publications": ("broker_publications", int, "publications of the publish "
                              "script alone, per number of subscribers (0: skip)"),
    "--wait-quiet": ("wait_quiet", float, "before each run, wait up to this many seconds for "
                     "the shared machine to be nearly idle"),
}


def _scaleout_parser(commands: Any) -> None:
    scale = commands.add_parser(
        "scaleout", help="one big room over several nodes on a Redis Cluster, against one "
        "node with its share (starts its own cluster and nodes)")
    for flag, (_, kind, text) in SCALEOUT_FLAGS.items():
        scale.add_argument(flag, type=kind, default=None, help=text)
    scale.add_argument("--shapes", default=None,
                       help="comma-separated subset of cluster3,cluster1,memory1")
    scale.add_argument("--json", type=Path, help="write the figures here")
    scale.add_argument("--markdown", type=Path, help="write the Markdown tables here")
    scale.add_argument("--reports", type=Path, default=None,
                       help="also write every run's full load-test report into this directory")
    scale.add_argument("--verbose", action="store_true", help="live progress of every run")


def _scaleout(args: argparse.Namespace, argv: list[str] | None) -> int:
    from loadtests.scaleout.config import ScaleoutConfig
    from loadtests.scaleout.render import render
    from loadtests.scaleout.runner import run_scaleout

    values: dict[str, Any] = {name: getattr(args, flag.lstrip("-").replace("-", "_"))
                              for flag, (name, _, _) in SCALEOUT_FLAGS.items()}
    if args.shapes is not None:
        values["shapes"] = tuple(p.strip() for p in args.shapes.split(",") if p.strip())
    try:
        config = ScaleoutConfig(**{k: v for k, v in values.items() if v is not None})
        config.validate()
    except ValueError as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "loadtests", *(sys.argv[1:] if argv is None else argv)])
    try:
        document = run_scaleout(config, command, progress=sys.stderr, verbose=args.verbose,
                                reports=args.reports)
    except RuntimeError as exc:
        print(f"loadtests scaleout: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # nodes and the cluster were stopped on the way out
        print("loadtests scaleout: interrupted", file=sys.stderr)
        return 130
    text = render(document)
    for path, content in ((args.json, json.dumps(document, indent=2) + "\n"),
                          (args.markdown, text)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    print(text)
    failed = [r for r in document["runs"] if r["online"] < r["target"] or r["errors_in_window"]]
    return 1 if failed else 0


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for flag, (name, _, _) in SCENARIO_FLAGS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            values[name] = value
    if args.encoding is not None:
        values["encoding"] = args.encoding
    if args.presence is not None:
        values["presence"] = args.presence
    if args.tallies is not None:
        values["tallies"] = args.tallies
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
                      server_pid=args.server_pid, driver=args.driver,
                      progress=None if args.quiet else default_progress())
    report = run(scenario, options)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot is not None:
        from loadtests.plot import write_plot  # matplotlib is imported only when asked

        write_plot(report, args.plot)
    print(summary(report))
    return 0 if report["connections"]["connects"] else 1


def _subset(text: str, allowed: tuple[str, ...], flag: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in allowed]
    if unknown or not chosen:
        raise ValueError(f"{flag} takes a comma-separated subset of {','.join(allowed)}")
    return tuple(name for name in allowed if name in chosen)  # always in the bench's order


def _compare(args: argparse.Namespace, argv: list[str] | None) -> int:
    from loadtests.compare import (
        DEFAULT_JSON,
        FULL,
        QUICK,
        SCENARIOS,
        TARGETS,
        Bench,
        render,
        run_compare,
    )

    try:
        targets = _subset(args.targets, TARGETS, "--targets")
        scenarios = _subset(args.scenarios, SCENARIOS, "--scenarios")
        check_url(args.redis_url.replace("redis://", "ws://", 1), False)
        if args.processes < 1:
            raise ValueError("--processes must be >= 1")
    except ValueError as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 2
    bench = Bench(redis_url=args.redis_url, processes=args.processes,
                  profile=QUICK if args.quick else FULL, p99_limit_ms=args.p99_limit_ms,
                  verbose=args.verbose, reports=args.reports, wait_quiet=args.wait_quiet,
                  command=shlex.join(["python", "-m", "loadtests", *(
                      sys.argv[1:] if argv is None else argv)]))
    try:
        document = run_compare(bench, targets, scenarios, args.json or DEFAULT_JSON)
    except RuntimeError as exc:
        print(f"loadtests compare: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # servers were stopped and Redis cleaned on the way out
        print("loadtests compare: interrupted", file=sys.stderr)
        return 130
    print(render(document))
    failed = [f"{s} {t}" for s, runs in document["runs"].items() for t, r in runs.items()
              if not r["deliveries"]]
    return 1 if failed else 0


def _ceiling(args: argparse.Namespace) -> int:
    from loadtests.compare import QUICK, Bench, disturbance
    from loadtests.host import raise_file_limit
    from loadtests.ladder import ladder_table

    rates_ = args.rates or QUICK.ladder_rates
    try:
        if args.clients < 2 or args.processes < 1:
            raise ValueError("--clients must be >= 2 and --processes >= 1")
        scenario = build_scenario("fanout", {
            "students": args.clients - 1, "fanout_rates": rates_, "fanout_step": args.step,
            "fanout_wait_max": 0, "duration": 3600})  # no joins, so nothing to drain
    except ValueError as exc:
        print(f"loadtests: {exc}", file=sys.stderr)
        return 2
    scenario = dataclasses.replace(scenario, duration=scenario.fanout_end + 1.0)
    raise_file_limit()
    bench = Bench(redis_url="", processes=args.processes, profile=QUICK,  # no Redis needed
                  p99_limit_ms=args.p99_limit_ms, verbose=args.verbose)
    try:
        result = bench.measure("ceiling", "fanout", scenario)
    except RuntimeError as exc:
        print(f"loadtests ceiling: {exc}", file=sys.stderr)
        return 1
    ladder = result["ladder"]
    print(f"## websockets.broadcast() to {args.clients} clients on loopback\n")
    print(ladder_table({"ceiling": ladder}))
    print(f"\nmax sustainable: {ladder['max_sustainable_per_s']} deliveries/s "
          f"(p99 <= {args.p99_limit_ms:g} ms, at {ladder['max_sustainable_rate']} messages/s); "
          f"peak {ladder['peak_per_s']} deliveries/s; per second of server CPU: "
          f"{ladder['per_server_core']}; errors {result['errors']}; other processes took "
          f"up to {disturbance(result)}% of a core")
    if args.json is not None:
        args.json.write_text(json.dumps({"clients": args.clients, **result}, indent=2) + "\n")
    return 0 if result["deliveries"] else 1


def _joincost_parser(commands: Any) -> None:
    cost = commands.add_parser(
        "joincost", help="the node's CPU per connect, join, leave and rejoin (starts its "
        "own node; --tree NAME=PATH adds another checkout, interleaved)")
    cost.add_argument("--rooms", type=int, default=40, help="sessions (default 40)")
    cost.add_argument("--members", type=int, default=50, help="members of each (default 50)")
    cost.add_argument("--redis-url", default="redis://127.0.0.1:6379/0",
                      help="the node's Redis under a key prefix of its own ('' for memory)")
    cost.add_argument("--repeats", type=int, default=2, help="runs of each tree (default 2)")
    cost.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                      help="another checkout to measure the same way (say, the code before)")
    cost.add_argument("--json", type=Path, help="write the figures here")


def _joincost(args: argparse.Namespace) -> int:
    from loadtests.host import raise_file_limit
    from loadtests.joincost import DEFAULT_TREES, Shape, render, run_joincost
    from loadtests.servers import check_redis

    trees = dict(DEFAULT_TREES)
    for named in args.tree:
        name, _, path = named.partition("=")
        if not path or not (Path(path) / "classroom" / "cli.py").is_file():
            print(f"loadtests: --tree {named!r} is not NAME=PATH of a checkout", file=sys.stderr)
            return 2
        trees[name] = Path(path)
    try:
        if args.redis_url:
            check_redis(args.redis_url)
        raise_file_limit()
        report = run_joincost(Shape(args.rooms, args.members, args.redis_url or None),
                              trees, args.repeats)
    except RuntimeError as exc:
        print(f"loadtests joincost: {exc}", file=sys.stderr)
        return 1
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(render(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m loadtests``."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "table":
        reports = {path.stem: json.loads(path.read_text()) for path in args.reports}
        print(markdown_table(reports))
        return 0
    if args.command == "compare":
        return _compare(args, argv)
    if args.command == "ceiling":
        return _ceiling(args)
    if args.command == "soak":
        return _soak(args, argv)
    if args.command == "scaleout":
        return _scaleout(args, argv)
    if args.command == "joincost":
        return _joincost(args)
    if args.command == "serve-reference":
        from loadtests.reference.server import serve

        return serve(args.host, args.port, args.redis_url, args.prefix)
    from loadtests.ceiling import serve_ceiling

    return serve_ceiling(args.host, args.port)
