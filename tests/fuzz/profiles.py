"""Hypothesis settings of the fuzz suite: short and reproducible by default, long on demand.

Every property takes its settings from :func:`fuzz_settings`, built on the profile
``classroom-fuzz`` (registered here; the rest of the suite does not use Hypothesis):

- by default each property runs a few dozen examples, derandomized (the same
  examples on every run and machine), so ``make test`` stays fast and a failure
  reproduces;
- ``CLASSROOM_FUZZ_EXAMPLES=2000`` selects ``classroom-fuzz-long``: that many
  examples for each of the main properties (the costlier ones scale down in
  proportion), from a random seed that Hypothesis prints with a failure, or from
  ``CLASSROOM_FUZZ_SEED`` to repeat a run. pytest's per-test timeout is lifted then.

    CLASSROOM_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/fuzz
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, seed, settings

BASE_EXAMPLES = 100
"""What a main property runs by default; the others give theirs relative to it."""

LONG_EXAMPLES = int(os.environ.get("CLASSROOM_FUZZ_EXAMPLES", "0") or 0)
LONG = LONG_EXAMPLES > 0
SEED = os.environ.get("CLASSROOM_FUZZ_SEED")

settings.register_profile(
    "classroom-fuzz",
    deadline=None,
    derandomize=True,
    database=None,  # nothing written into the work tree; derandomized runs repeat anyway
    print_blob=True,
    # One real server per test serves all of its examples, so the function-scoped
    # fixtures are meant; generating frames near the 64 KiB limit is meant too.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large, HealthCheck.large_base_example],
)
settings.register_profile(
    "classroom-fuzz-long",
    parent=settings.get_profile("classroom-fuzz"),
    derandomize=False,
    max_examples=max(1, LONG_EXAMPLES),
)
PROFILE = settings.get_profile("classroom-fuzz-long" if LONG else "classroom-fuzz")

_F = TypeVar("_F", bound=Callable[..., Any])


def fuzz_settings(examples: int) -> Callable[[_F], _F]:
    """Settings for a property that runs ``examples`` by default (scaled in a long run)."""
    count = max(1, LONG_EXAMPLES * examples // BASE_EXAMPLES) if LONG else examples
    configured = settings(PROFILE, max_examples=count)

    def apply(test: _F) -> _F:
        test = configured(test)
        if LONG and SEED is not None:
            test = seed(int(SEED))(test)
        return test

    return apply


TIMEOUT = pytest.mark.timeout(0 if LONG else 60)
"""Each module's ``pytestmark``: no per-test timeout in a long run."""
