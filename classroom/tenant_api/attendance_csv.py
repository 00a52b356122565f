"""The attendance register as CSV, for the spreadsheet an accreditation report starts from.

One row per participant; times in UTC ISO 8601 (a spreadsheet reads them, a
person too); spans joined as ``from/to`` pairs separated by ``;``. A cell that
starts like a formula is quoted with a leading apostrophe, so opening the file
never runs what a back end put in a sub or registration id (CSV injection).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from classroom.tenant_api.models import AttendanceLine, AttendanceRegister

COLUMNS = ("sub", "registration_id", "role", "minutes", "percent", "met",
           "first_join", "last_leave", "intervals")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(accept: str) -> bool:
    """Whether the Accept header asks for CSV before JSON."""
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == "text/csv":
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


def register_csv(register: AttendanceRegister) -> str:
    """The register as CSV text with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in register.participants:
        writer.writerow([_cell(value) for value in _row(line)])
    for kept in register.erased:
        writer.writerow([_cell(value) for value in (
            kept.subject, "", "", kept.minutes, _text(kept.percent), _text(kept.met),
            "", "", "")])
    return out.getvalue()


def _row(line: AttendanceLine) -> tuple[object, ...]:
    spans = line.intervals
    return (
        line.sub, line.registration_id or "", line.role or "", line.minutes,
        _text(line.percent), _text(line.met),
        _iso(spans[0].start) if spans else "", _iso(spans[-1].end) if spans else "",
        ";".join(f"{_iso(s.start)}/{_iso(s.end)}" for s in spans),
    )


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
