"""The layers of docs/architecture.md, held by a test: a module importing a layer it must not fails.

A newcomer reads the architecture from the folders; this rule keeps that picture true.
Every ``.py`` under ``classroom/``, ``auth/`` and ``presence/`` is parsed (never
imported), and every import in it, anywhere in the file (function bodies and
``if TYPE_CHECKING:`` blocks included, relative imports made absolute), is checked
against ``RULES``: the classroom, auth and presence modules a layer may import, and
the libraries it must not. A module answers to its longest matching layer prefix; a
classroom module matching none is an error of its own (give a new folder a rule).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("classroom", "auth", "presence")
PURE = frozenset({"asyncio", "starlette", "uvicorn", "redis", "websockets", "opentok",
                  "aiosmtplib", "sentry_sdk", "httpx", "prometheus_client", "presence"})
WEB = frozenset({"starlette", "uvicorn"})
LEAVES = ("classroom.config", "classroom.metrics", "classroom.logs")

# layer prefix: (what it may import of classroom/auth/presence, libraries it must not import)
RULES: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
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
    # A client of the wire, for other programs: it knows nothing of the server inside.
    "classroom.client": (("classroom.client",), PURE - {"asyncio", "websockets"}),
    "classroom.config": (("classroom.config", "auth"), WEB),
    "classroom.metrics": (("classroom.metrics", "auth"), WEB),
    "classroom.logs": (("classroom.logs", "auth"), WEB),
    # Entry points may import anything but uvicorn: only the edge knows it.
    "classroom.app": (OURS, frozenset({"uvicorn"})),
    "classroom.cli": (OURS, frozenset({"uvicorn"})),
    "classroom.demo": (OURS, frozenset({"uvicorn"})),
    "classroom.__init__": (OURS, frozenset({"uvicorn"})),  # the package itself, exactly
    "auth": (("auth",), frozenset()),
    "presence": (("presence",), frozenset()),
}


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str) -> str | None:
    """The rule a module answers to: the longest matching layer prefix, or None."""
    name = "classroom.__init__" if module == "classroom" else module
    matches = [prefix for prefix in RULES if _within(name, prefix)]
    return max(matches, key=len) if matches else None


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in ``source``, wherever it sits in the file.

    ``from a.b import c`` counts as ``a.b.c`` for our own packages, since ``c`` may be a
    submodule (``from classroom import sessions``); a library counts by its name alone.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                keep = len(parts) - (node.level - 1)
                base = ".".join([*parts[: max(keep, 0)], *filter(None, [base])])
            if base.split(".")[0] in OURS:
                found += [(node.lineno, base if alias.name == "*" else f"{base}.{alias.name}")
                          for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def violations(module: str, source: str, *, path: str | None = None,
               is_package: bool = False) -> list[str]:
    """Each import of ``module`` that breaks its layer's rule, as ``path:line imports X (...)``."""
    where = path or module
    layer = layer_of(module)
    if layer is None:
        return [f"{where}: {module} belongs to no layer (give its folder a rule in RULES)"]
    allowed, forbidden = RULES[layer]
    problems = []
    for line, name in imports_of(module, source, is_package=is_package):
        top = name.split(".")[0]
        if top in OURS and not any(_within(name, prefix) for prefix in allowed):
            problems.append(f"{where}:{line} imports {name} "
                            f"(layer {layer} may import: {', '.join(allowed)})")
        elif top in forbidden:
            problems.append(f"{where}:{line} imports {name} "
                            f"(layer {layer} must not import: {', '.join(sorted(forbidden))})")
    return problems


def modules() -> list[tuple[str, Path]]:
    """(module name, file) for every ``.py`` under classroom/, auth/ and presence/."""
    found = []
    for top in OURS:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _check(module: str, path: Path) -> list[str]:
    return violations(module, path.read_text(encoding="utf-8"),
                      path=str(path.relative_to(ROOT)), is_package=path.name == "__init__.py")


@pytest.mark.parametrize("layer", list(RULES))
def test_every_module_keeps_to_its_layer(layer: str) -> None:
    problems = [p for module, path in modules() if layer_of(module) == layer
                for p in _check(module, path)]
    assert problems == [], "\n".join(problems)


def test_every_classroom_module_belongs_to_a_layer() -> None:
    found = modules()
    assert len(found) > 50, "found too few modules: is ROOT right?"
    assert [str(p.relative_to(ROOT)) for m, p in found if layer_of(m) is None] == []


@pytest.mark.parametrize(("module", "source"), [
    ("classroom.domain.x", "import asyncio"),
    ("classroom.domain.x", "from classroom.sessions.node import Node"),
    ("classroom.domain.x", "import classroom.sessions.node"),
    ("classroom.domain.x", "from ..sessions import node"),
    ("classroom.domain.x", "from .. import sessions"),
    ("classroom.domain.x", "from classroom import sessions"),
    ("classroom.domain.x", "def f():\n    from starlette.requests import Request\n"),
    ("classroom.domain.x", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                           "    from classroom.backends.broker import Broker\n"),
    ("classroom.domain.x", "import presence.store"),
    ("classroom.sessions.x", "from classroom.edge.connection import Connection"),
    ("classroom.sessions.x", "import uvicorn"),
    ("classroom.protocol.x", "from classroom.handlers.table import run_command"),
    ("classroom.edge.x", "from classroom.app import Classroom"),
    ("classroom.edge.x", "from classroom.tenant_api.routes import ServerApi"),
    ("classroom.config", "from classroom.metrics import X"),
    ("classroom.app", "import uvicorn"),
    ("classroom.cli", "from uvicorn import run"),
    ("auth.tokens", "from classroom.domain.views import View"),
    ("auth.tokens", "import classroom"),
    ("auth.tokens", "from presence.store import PresenceStore"),
    ("presence.redis", "from classroom.x import y"),
    ("presence.redis", "from auth.identity import Identity"),
    ("classroom.newlayer.x", "import json"),
])
def test_the_checker_flags_a_forbidden_import(module: str, source: str) -> None:
    assert violations(module, source)


@pytest.mark.parametrize(("module", "source", "is_package"), [
    ("classroom.domain.x", "from classroom.domain.views import View\nimport auth.identity", False),
    ("classroom.domain.x", "from .views import View\nfrom . import state", False),
    ("classroom.domain", "from .views import View", True),
    ("classroom.domain", "from classroom import domain", True),
    ("classroom.sessions.x", "from classroom.protocol.codec import encode\nimport asyncio", False),
    ("classroom.edge.x", "from classroom.handlers.table import run_command\nimport uvicorn", False),
    ("classroom.tenant_api.x", "from starlette.routing import Route", False),
    ("classroom.app", "from classroom.tenant_api.routes import ServerApi", False),
    ("classroom", "from .cli import main\nfrom classroom.app import Classroom", True),
])
def test_the_checker_lets_an_allowed_import_pass(module: str, source: str,
                                                 is_package: bool) -> None:
    assert violations(module, source, is_package=is_package) == []


def test_a_violation_names_the_path_line_and_rule() -> None:
    [problem] = violations("classroom.domain.x", "import json\n\nimport classroom.edge",
                           path="classroom/domain/x.py")
    assert problem == ("classroom/domain/x.py:3 imports classroom.edge "
                       "(layer classroom.domain may import: classroom.domain, auth)")
