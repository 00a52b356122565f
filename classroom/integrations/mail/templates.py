"""What the mails say: an invitation per rostered student, a summary per trainer.

Every mail carries Dutch first, then English, in one body, so nobody needs to know
a recipient's language. Builders are pure: they take the roster and rows and return
messages, so what goes to whom is testable without a server. Each mail is built
for one recipient from that recipient's data only: an invitation names only its own
student, and the summary (with its students' names and progress) goes to trainers.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Collection, Mapping
from typing import Any

from classroom.integrations.mail.outbox import Message

RULE = "-" * 60


def invitations(
    tenant_id: str, session: str, roster: Mapping[str, Any], *,
    tenant_name: str | None = None, join_url: str | Mapping[str, str] | None = None,
    now: float | None = None,
) -> list[Message]:
    """One invitation per rostered student with an e-mail address.

    ``join_url`` is one link for everyone or a link per student sub. The dedupe key
    covers the address, so setting the roster again re-invites only new or changed ones.
    """
    org = _line(tenant_name or tenant_id)
    title = _title(roster, session)
    messages = []
    for student in roster.get("students", []):
        sub, address = student.get("sub"), student.get("email")
        if not sub or not address:
            continue
        link = join_url.get(sub) if isinstance(join_url, Mapping) else join_url
        name = _line(student.get("name") or "")
        nl, en = _invitation_nl(name, title, org, link), _invitation_en(name, title, org, link)
        messages.append(Message.new(
            now=now, tenant=tenant_id, kind="invitation", to=address, recipient=sub,
            subject=f"Uitnodiging / Invitation: {title}",
            text=_bilingual(nl, en), html=_html(nl, en), about=[sub], session=session,
            dedupe=_key("invitation", tenant_id, session, sub, address),
        ))
    return messages


def summaries(
    tenant_id: str, session: str, roster: Mapping[str, Any],
    trainer_addresses: Mapping[str, str], rows: list[dict[str, Any]], *,
    joined: Collection[str] | None = None, tenant_name: str | None = None,
    now: float | None = None,
) -> list[Message]:
    """One summary per trainer of the session with an address: their students only.

    ``rows`` are cohort rows (``classroom.domain.cohort.cohort_rows``). A student belongs to
    every trainer of the session unless their roster entry names ``trainer`` or
    ``trainers``. A student counts as present when their row shows activity (online,
    a screen, progress) or their sub is in ``joined`` (seen online during the session).
    Addresses of subs that are not trainers of this session are ignored.
    """
    org = _line(tenant_name or tenant_id)
    title = _title(roster, session)
    rostered = {s["sub"]: s for s in roster.get("students", []) if s.get("sub")}
    messages = []
    for trainer in dict.fromkeys(roster.get("trainers", [])):
        address = trainer_addresses.get(trainer)
        if not address:
            continue
        mine = [row for row in rows if _belongs(row, trainer, rostered)]
        people = [_person(row, rostered, joined) for row in mine]
        nl, en = _summary_nl(title, org, people), _summary_en(title, org, people)
        messages.append(Message.new(
            now=now, tenant=tenant_id, kind="summary", to=address, recipient=trainer,
            subject=f"Samenvatting / Summary: {title}",
            text=_bilingual(nl, en), html=_html(nl, en), session=session,
            about=[trainer, *dict.fromkeys(p["sub"] for p in people if p["sub"])],
            dedupe=_key("summary", tenant_id, session, trainer, address),
        ))
    return messages


# -- invitation -----------------------------------------------------------------------


def _invitation_nl(name: str, title: str, org: str, link: str | None) -> str:
    lines = [f"Beste {name}," if name else "Beste deelnemer,", "",
             f"Je bent ingeschreven voor de sessie \"{title}\" van {org}."]
    if link:
        lines += ["", f"Deelnemen: {link}"]
    return "\n".join([*lines, "", "Met vriendelijke groet,", org])


def _invitation_en(name: str, title: str, org: str, link: str | None) -> str:
    lines = [f"Dear {name}," if name else "Dear participant,", "",
             f"You are enrolled in the session \"{title}\" by {org}."]
    if link:
        lines += ["", f"Join: {link}"]
    return "\n".join([*lines, "", "Kind regards,", org])


# -- summary --------------------------------------------------------------------------


def _summary_nl(title: str, org: str, people: list[dict[str, Any]]) -> str:
    present = sum(1 for p in people if p["present"])
    lines = ["Beste trainer,", "", f"De sessie \"{title}\" van {org} is afgelopen.", "",
             f"Aanwezig: {present} van {len(people)} cursisten.", ""]
    for p in people:
        if p["present"]:
            lines.append(f"- {p['name']}: aanwezig; scherm {p['screen']}, "
                         f"{p['completed']} voltooid, score {p['score']}")
        else:
            lines.append(f"- {p['name']}: niet verschenen")
    return "\n".join([*lines, "", "Met vriendelijke groet,", org])


def _summary_en(title: str, org: str, people: list[dict[str, Any]]) -> str:
    present = sum(1 for p in people if p["present"])
    lines = ["Dear trainer,", "", f"The session \"{title}\" by {org} has ended.", "",
             f"Attended: {present} of {len(people)} students.", ""]
    for p in people:
        if p["present"]:
            lines.append(f"- {p['name']}: attended; screen {p['screen']}, "
                         f"{p['completed']} completed, score {p['score']}")
        else:
            lines.append(f"- {p['name']}: never joined")
    return "\n".join([*lines, "", "Kind regards,", org])


def _belongs(row: Mapping[str, Any], trainer: str, rostered: Mapping[str, Any]) -> bool:
    participant = row.get("participant") or {}
    if participant.get("role", "student") != "student":
        return False
    entry = rostered.get(participant.get("sub", "")) or {}
    assigned = entry.get("trainers") or ([entry["trainer"]] if entry.get("trainer") else None)
    return assigned is None or trainer in assigned


def _person(row: Mapping[str, Any], rostered: Mapping[str, Any],
            joined: Collection[str] | None) -> dict[str, Any]:
    """Name, attendance and progress; never the student's address or phone."""
    participant = row.get("participant") or {}
    sub = participant.get("sub", "")
    name = (participant.get("name") or (rostered.get(sub) or {}).get("name")
            or participant.get("display_name") or sub or "?")
    completed = row.get("completed_count", len(row.get("completed") or []))
    present = bool(row.get("online") or row.get("last_activity") or row.get("screen")
                   or completed or (joined is not None and sub in joined))
    score = row.get("score")
    return {"sub": sub, "name": _line(str(name)), "present": present,
            "screen": _line(str(row.get("screen") or "-")), "completed": completed,
            "score": "-" if score is None else score}


# -- shared ---------------------------------------------------------------------------


def _title(roster: Mapping[str, Any], session: str) -> str:
    return _line(str(roster.get("title") or roster.get("course") or session))


def _line(text: str) -> str:
    """One line of text: a title or name must not be able to add headers or paragraphs."""
    return " ".join(text.split())


def _bilingual(nl: str, en: str) -> str:
    return f"(English below)\n\n{nl}\n\n{RULE}\n\n{en}\n"


def _html(nl: str, en: str) -> str:
    def part(lang: str, text: str) -> str:
        body = "<br>\n".join(html.escape(line) for line in text.split("\n"))
        return f'<div lang="{lang}">\n{body}\n</div>'

    return (f"<!DOCTYPE html>\n<html><body>\n{part('nl', nl)}\n<hr>\n{part('en', en)}\n"
            "</body></html>\n")


def _key(*parts: str) -> str:
    """A dedupe key that holds no personal data in clear."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
