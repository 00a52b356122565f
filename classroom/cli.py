"""The ``classroom`` command: ``classroom serve --host H --port P``."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys

from auth.tenants import TenantConfigError
from auth.tokens import issue_token
from classroom import __version__
from classroom.app import create_app
from classroom.config import Settings
from classroom.demo import DEMO_PAGES, DEMO_SESSION, DEMO_USERS
from classroom.edge.server import build_server
from classroom.integrations.error_reports import init_error_reports, shutdown_error_reports
from classroom.logs import configure_logging


def demo_banner(settings: Settings, host: str, port: int) -> str:
    """Ready-made tokens for the demo tenant, so a new user can connect at once."""
    tenant = settings.load_tenants().get("demo")
    if tenant is None:
        return ""
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    lines = [
        "",
        "classroom demo tenant (no CLASSROOM_TENANTS set)",
        f"  WebSocket endpoint : ws://{shown_host}:{port}/ws",
        f"  demo session       : {DEMO_SESSION}",
        f"  server API key     : {tenant.api_key}",
        "  open in a browser (the token travels in the #fragment, never to the server):",
    ]
    tokens = []
    for role, sub, name, email in DEMO_USERS:
        token = issue_token(
            tenant, sub=sub, role=role, sessions=[DEMO_SESSION], ttl=12 * 3600,
            name=name, email=email,
        )
        tokens.append((role, sub, token))
        page = DEMO_PAGES[role]
        # ``tenant`` gives the page its tenant's frame-src (the demo tenant frames nothing).
        lines.append(f"    {role:<8} http://{shown_host}:{port}/{page}?session={DEMO_SESSION}"
                     f"&tenant={tenant.id}#token={token}")
    lines.append("  connection tokens (valid 12 h; send as "
                 "{\"type\": \"connect\", \"token\": ...}):")
    lines += [f"    {role:<8} {sub:<15} {token}" for role, sub, token in tokens]
    return "\n".join(lines) + "\n"


FULL_COLLECTION_AFTER = 100
"""Young collections of the middle generation before a full one may run (CPython's
default is 10). Python runs a full collection whenever the objects promoted since the
last one pass a quarter of the old ones: during a storm of 5,000 reconnects, one every
two seconds, each walking every live connection's objects (420,000 at 5,000
connections) for 200-650 ms while no member got an event. Closed connections leave no
reference cycles (``Connection._release``), so there is little for a full collection to
find; after 700,000 objects promoted rather than about 70,000 it still runs."""


YOUNG_COLLECTION_AFTER = 7000
"""Allocations (net of frees) before a young collection (CPython's default is 700). A
young collection walks every object born since the last one and promotes the survivors:
at 700, a node fanning out 18,000 frames a second collected several hundred times a
second and promoted whatever was in flight at that moment (frames, replies, poll
answers), which filled the older generations and brought a full collection (0.3-0.4 s,
no event delivered meanwhile) into every 5,000-client reconnect storm. At 7,000 most of
those objects are gone before a collection sees them; the storm meets no full
collection, and its worst delivery fell from 320-400 ms to 115-150 ms."""


def freeze_startup_objects() -> None:
    """Keep what start-up built (modules, pydantic schemas, the app) out of every later
    full collection (a room of 500 joining at once triggered gen-2 collections that
    walked them all and stalled the event loop for 25-55 ms each), and let full
    collections come less often (:data:`YOUNG_COLLECTION_AFTER`,
    :data:`FULL_COLLECTION_AFTER`)."""
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_AFTER)


def serve(host: str, port: int) -> int:
    """Start one node and serve until SIGINT/SIGTERM."""
    try:
        settings = Settings()
        # Logging first, so that warnings while loading (short secrets or keys) are JSON lines.
        configure_logging(settings.log_level)
        settings.check_deployment()
        settings.load_tenants()
        app = create_app(settings)
    except (TenantConfigError, ValueError) as exc:
        print(f"classroom: configuration error: {exc}", file=sys.stderr)
        return 2
    if settings.is_demo:
        print(demo_banner(settings, host, port), flush=True)
    server = build_server(app, settings, host, port)
    init_error_reports(settings.sentry_dsn, release=__version__)
    freeze_startup_objects()
    try:
        server.run()  # on the configured event loop (uvloop)
    finally:
        shutdown_error_reports()
    return 0


def asyncapi_json() -> str:
    """The AsyncAPI document, as ``/asyncapi.json`` serves it, in a stable, readable form."""
    from classroom.protocol.asyncapi import build_asyncapi

    return json.dumps(build_asyncapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="classroom", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run a classroom server node")
    serve_parser.add_argument("--host", default="127.0.0.1")
    # $PORT, as platforms and the container image set it; 8000 otherwise.
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    commands.add_parser(
        "asyncapi", help="print the AsyncAPI document of /ws (the npm client's types)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.host, args.port)
    if args.command == "asyncapi":
        sys.stdout.write(asyncapi_json())
        return 0
    return 2  # pragma: no cover - argparse enforces the choices


if __name__ == "__main__":
    sys.exit(main())
