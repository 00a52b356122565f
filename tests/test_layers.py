"""The layers of docs/architecture.md, held by a test: a module importing a layer it must not fails.

A newcomer reads the architecture from the folders; this keeps the folders
honest. Every ``.py`` under ``classroom/``, ``auth/`` and ``presence/`` is parsed
(never imported), and every import in it, anywhere in the file, is checked
against ``RULES``: the classroom, auth and presence modules a layer may import,
and the libraries it must not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = frozenset({"asyncio", "starlette", "uvicorn", "redis", "websockets", "opentok",
                  "aiosmtplib", "sentry_sdk", "httpx", "prometheus_client", "presence"})
WEB = frozenset({"starlette", "uvicorn"})
LEAVES = ("classroom.config", "classroom.metrics", "classroom.logs")

RULES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    # layer: (what it may import of classroom/auth/presence, libraries it must not import)
    "classroom.domain": (("classroom.domain", "auth"), PURE),
    "classroom.protocol": (("classroom.domain", "classroom.protocol", "auth"), PURE),
    "classroom.backends": (("classroom.domain", "classroom.backends", "auth", "presence"), WEB),
    "classroom.sessions": (("classroom.domain", "classroom.protocol", "classroom.backends",
                            "classroom.sessions", "classroom.metrics", "auth", "presence"), WEB),
    "classroom.integrations": (("classroom.domain", "classroom.backends", "classroom.sessions",
                                "classroom.integrations", "classroom.config",
                                "classroom.metrics", "auth"), WEB),
    "classroom.handlers": (("classroom.domain", "classroom.protocol", "classroom.backends",
                            "classroom.sessions", "classroom.integrations", "classroom.handlers",
                            "classroom.config", "classroom.metrics", "auth", "presence"), WEB),
    "classroom.tenant_api": (("classroom.domain", "classroom.protocol", "classroom.backends",
                              "classroom.sessions", "classroom.integrations",
                              "classroom.tenant_api", "classroom.config", "classroom.metrics",
                              "auth", "presence"), frozenset({"uvicorn"})),
    "classroom.edge": (("classroom.domain", "classroom.protocol", "classroom.backends",
                        "classroom.sessions", "classroom.integrations", "classroom.handlers",
                        "classroom.edge", *LEAVES, "auth", "presence"), frozenset()),
    **{leaf: ((leaf, "auth"), WEB) for leaf in LEAVES},
    "classroom.app": (("classroom", "auth", "presence"), frozenset({"uvicorn"})),
    "classroom.cli": (("classroom", "auth", "presence"), frozenset({"uvicorn"})),
    "classroom.demo": (("classroom", "auth", "presence"), frozenset({"uvicorn"})),
    "classroom.__init__": (("classroom", "auth", "presence"), frozenset({"uvicorn"})),
    "auth": (("auth",), frozenset()),
    "presence": (("presence",), frozenset()),
}
OURS = ("classroom", "auth", "presence")


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    """The rule a module answers to: the longest matching layer prefix."""
    matches = [prefix for prefix in RULES if _within(module, prefix)]
    if module == "classroom":
        return "classroom.__init__"
    return max(matches, key=len) if matches else None


def imports_of(module: str, source: str) -> list[tuple[int, str]]:
    """Every module ``source`` imports, anywhere in the file, relative imports made absolute."""
    found = []
    package = module.rsplit(".", 1)[0] if not module.endswith("__init__") else module
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            found.append((node.lineno, base))
    return found


def violations(module: str, source: str) -> list[str]:
    """What ``module`` imports against its layer's rule (empty when it keeps to it)."""
    layer = layer_of(module)
    if layer is None:
        return [f"{module} belongs to no layer: give its folder a rule"]
    allowed, forbidden = RULES[layer]
    problems = []
    for line, name in imports_of(module, source):
        top = name.split(".")[0]
        if top in OURS and not any(_within(name, prefix) for prefix in allowed):
            problems.append(f"{module}:{line} imports {name} (layer {layer} may import "
                            f"{', '.join(allowed)})")
        elif top in forbidden:
            problems.append(f"{module}:{line} imports {name} (layer {layer} must not)")
    return problems


def modules() -> list[tuple[str, Path]]:
    found = []
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            # A package is its folder's module, but classroom/__init__.py is a rule of its own.
            if parts[-1] == "__init__" and parts != ["classroom", "__init__"]:
                parts.pop()
            found.append((".".join(parts), path))
    return found


def test_every_module_keeps_to_its_layer() -> None:
    found = modules()
    assert len(found) > 80 and {layer_of(m) for m, _ in found} == set(RULES)
    problems = [p for module, path in found for p in violations(module, path.read_text())]
    assert problems == [], "\n".join(problems)


def test_every_classroom_module_belongs_to_a_layer() -> None:
    assert [m for m, _ in modules() if layer_of(m) is None] == []


@pytest.mark.parametrize(("module", "source"), [
    ("classroom.domain.x", "import asyncio"),
    ("classroom.domain.x", "from classroom.sessions.node import Node"),
    ("classroom.domain.x", "from ..sessions import node"),
    ("classroom.domain.x", "def f():\n    from starlette.requests import Request\n"),
    ("classroom.domain.x", "from classroom.backends.broker import Broker"),
    ("classroom.sessions.x", "from classroom.edge.connection import Connection"),
    ("classroom.sessions.x", "import uvicorn"),
    ("classroom.protocol.x", "from classroom.handlers.table import run_command"),
    ("classroom.edge.x", "from classroom.app import Classroom"),
    ("classroom.app", "import uvicorn"),
    ("auth.tokens", "from classroom.domain.views import View"),
    ("presence.redis", "from classroom.backends.redis_client import redis_client"),
    ("presence.redis", "from auth.identity import Identity"),
    ("classroom.newlayer.x", "import json"),
])
def test_the_checker_flags_a_forbidden_import(module: str, source: str) -> None:
    assert violations(module, source)


@pytest.mark.parametrize(("module", "source"), [
    ("classroom.domain.x", "from classroom.domain.views import View\nimport auth.identity"),
    ("classroom.domain.x", "from .views import View"),
    ("classroom.sessions.x", "from classroom.protocol.codec import encode\nimport asyncio"),
    ("classroom.edge.x", "from classroom.handlers.table import run_command\nimport uvicorn"),
    ("classroom.app", "from classroom.tenant_api.routes import ServerApi"),
])
def test_the_checker_lets_an_allowed_import_pass(module: str, source: str) -> None:
    assert violations(module, source) == []
