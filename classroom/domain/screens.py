"""A course's screens as the roster names them: ids in order, each with an optional title and page.

The tenant's back end lists a screen either by its id alone (``"intro"``) or as an
object (``{"id": "intro", "title": "Welcome", "url": "https://..."}``); rosters
stored before objects existed hold ids only. Progress and the cohort table count
by id; clients get the list normalised to objects, so a page can show a screen's
title and frame its page without caring which form the back end used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auth.urls import page_origin


def screen_objects(listed: Any) -> list[dict[str, str]] | None:
    """The roster's screens as ``{"id", "title"?, "url"?}`` objects, or None when it names none."""
    if not isinstance(listed, list):
        return None
    screens: list[dict[str, str]] = []
    for item in listed:
        if isinstance(item, str):
            screens.append({"id": item})
        elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
            screen = {"id": item["id"]}
            for key in ("title", "url"):
                if isinstance(item.get(key), str):
                    screen[key] = item[key]
            screens.append(screen)
    return screens or None


def screen_ids(listed: Any) -> list[str] | None:
    """The roster's screen ids in course order, or None when it names none."""
    screens = screen_objects(listed)
    return None if screens is None else [screen["id"] for screen in screens]


def duplicate_screen(listed: list[Any]) -> int | None:
    """The index of the first screen whose id an earlier one has, or None."""
    seen: set[str] = set()
    for index, item in enumerate(listed):
        screen_id = item if isinstance(item, str) else getattr(item, "id", None)
        if screen_id in seen:
            return index
        if isinstance(screen_id, str):
            seen.add(screen_id)
    return None


def origin_refusal(listed: Any, allowed: tuple[str, ...]) -> str | None:
    """Why a roster's screen pages may not be shown for this tenant, or None if they may.

    A page's origin must be one of the tenant's ``frame_origins``: the web client's
    Content-Security-Policy lets the browser frame those and nothing else, so a page
    elsewhere would show as an error to every student. The message names the screen's
    place in the list, never its URL.
    """
    for index, screen in enumerate(screen_objects(listed) or []):
        url = screen.get("url")
        if url is not None and page_origin(url) not in allowed:
            return (f"screens.{index}.url: its origin is not in the tenant's frame_origins "
                    "(docs/configuration.md)")
    return None
