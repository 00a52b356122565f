"""The demo tenant's lesson: who is in it and what it covers, for ``make run``."""

from __future__ import annotations

from typing import Any

DEMO_SESSION = "demo-lesson"
DEMO_SCREENS = ("intro", "goals", "model", "example", "practice", "wrap-up")  # static/course.js
DEMO_PAGES = {"trainer": "trainer", "student": "student", "planner": "dashboard"}
DEMO_USERS: tuple[tuple[str, str, str, str], ...] = (
    ("trainer", "demo-trainer", "Tessa Trainer", "tessa@example.nl"),
    ("student", "demo-student-1", "Sam Student", "sam@example.nl"),
    ("student", "demo-student-2", "Noor de Vries", "noor@example.nl"),
    ("planner", "demo-planner", "Pim Planner", "pim@example.nl"),
)


def demo_roster() -> dict[str, Any]:
    """The roster of the demo session, so the dashboard has rows from the start."""
    return {
        "title": "Demo",
        "trainers": [sub for role, sub, _, _ in DEMO_USERS if role == "trainer"],
        "students": [{"sub": sub, "name": name, "email": email}
                     for role, sub, name, email in DEMO_USERS if role == "student"],
        "screens": list(DEMO_SCREENS),
    }
