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
        nl, en = (_invitation(lang, name, title, org, link) for lang in ("nl", "en"))
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
        nl, en = (_summary(lang, title, org, people) for lang in ("nl", "en"))
        messages.append(Message.new(
            now=now, tenant=tenant_id, kind="summary", to=address, recipient=trainer,
            subject=f"Samenvatting / Summary: {title}",
            text=_bilingual(nl, en), html=_html(nl, en), session=session,
            about=[trainer, *dict.fromkeys(p["sub"] for p in people if p["sub"])],
            dedupe=_key("summary", tenant_id, session, trainer, address),
        ))
    return messages


# -- the texts, in Dutch and in English ------------------------------------------------

PHRASES: dict[str, dict[str, str]] = {
    "nl": {
        "dear": "Beste {name},",
        "dear_participant": "Beste deelnemer,",
        "enrolled": "Je bent ingeschreven voor de sessie \"{title}\" van {org}.",
        "join": "Deelnemen: {link}",
        "dear_trainer": "Beste trainer,",
        "ended": "De sessie \"{title}\" van {org} is afgelopen.",
        "attended": "Aanwezig: {present} van {total} cursisten.",
        "present": "- {name}: aanwezig; scherm {screen}, {completed} voltooid, score {score}",
        "absent": "- {name}: niet verschenen",
        "regards": "Met vriendelijke groet,",
    },
    "en": {
        "dear": "Dear {name},",
        "dear_participant": "Dear participant,",
        "enrolled": "You are enrolled in the session \"{title}\" by {org}.",
        "join": "Join: {link}",
        "dear_trainer": "Dear trainer,",
        "ended": "The session \"{title}\" by {org} has ended.",
        "attended": "Attended: {present} of {total} students.",
        "present": "- {name}: attended; screen {screen}, {completed} completed, score {score}",
        "absent": "- {name}: never joined",
        "regards": "Kind regards,",
    },
}
"""Every sentence a mail says, per language; the two texts of one mail differ in nothing else."""


def _invitation(lang: str, name: str, title: str, org: str, link: str | None) -> str:
    say = PHRASES[lang]
    lines = [say["dear"].format(name=name) if name else say["dear_participant"], "",
             say["enrolled"].format(title=title, org=org)]
    if link:
        lines += ["", say["join"].format(link=link)]
    return "\n".join([*lines, "", say["regards"], org])


def _summary(lang: str, title: str, org: str, people: list[dict[str, Any]]) -> str:
    say = PHRASES[lang]
    present = sum(1 for p in people if p["present"])
    lines = [say["dear_trainer"], "", say["ended"].format(title=title, org=org), "",
             say["attended"].format(present=present, total=len(people)), ""]
    for p in people:
        lines.append(say["present" if p["present"] else "absent"].format(**p))
    return "\n".join([*lines, "", say["regards"], org])


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
