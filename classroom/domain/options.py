"""Session options: what a trainer lets students do in one lesson, over the tenant's defaults.

A trainer switches students' marks and pointers on or off for the session
(``session.options``, stored like any event, so every node and every later
``joined`` agree). Until they do, the tenant's ``student_marks`` (default on)
and ``student_pointers`` (default off: thirty moving dots distract more than
they help) apply. Switching marks off stops new marks only: a student can still
remove or clear their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from auth.tenants import Tenant
from classroom.domain.refusals import RequestRefused

OPTION_NAMES = ("student_marks", "student_pointers")


@dataclass(frozen=True, slots=True)
class OptionDefaults:
    """The options of a session whose trainer has not set them: the tenant's settings."""

    student_marks: bool = True
    student_pointers: bool = False

    @classmethod
    def of(cls, tenant: Tenant | None) -> OptionDefaults:
        """The tenant's defaults; the built-in ones for a tenant no longer configured."""
        if tenant is None:
            return cls()
        return cls(student_marks=tenant.student_marks, student_pointers=tenant.student_pointers)


DEFAULT_OPTIONS = OptionDefaults()
"""The built-in defaults: marks on, pointers off (a tenant's settings say otherwise)."""


def effective_options(chosen: Mapping[str, bool], defaults: OptionDefaults) -> dict[str, bool]:
    """Every option as it holds now: the trainer's choice, else the tenant's default."""
    return {name: bool(chosen.get(name, getattr(defaults, name))) for name in OPTION_NAMES}


def option_refusal(kind: str, options: Mapping[str, bool]) -> RequestRefused | None:
    """Why a student may not publish ``kind`` under these options, or None if they may."""
    if kind == "annotation.add" and not options["student_marks"]:
        return RequestRefused("forbidden", "the trainer has switched student marks off")
    if kind == "pointer" and not options["student_pointers"]:
        return RequestRefused("forbidden", "student pointers are off in this session")
    return None
