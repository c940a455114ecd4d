"""How a representation's per-file replica counts on one site read as one word.

Order of precedence: removing, failed, in progress, paused, queued, present (all files), partial
(some files present, none wanted), none (not on the site and not wanted there).
"""

from __future__ import annotations

from typing import Protocol


class _State(Protocol):
    counts: dict[str, int]
    paused: bool


def summarize_site_state(state: _State | None, file_count: int) -> str:
    if state is None:
        return "none"
    c = state.counts
    if c.get("removing"):
        return "removing"
    if c.get("failed"):
        return "failed"
    if c.get("in_progress"):
        return "in_progress"
    if c.get("queued"):
        return "paused" if state.paused else "queued"
    present = c.get("present", 0)
    if present and present >= file_count:
        return "present"
    if present:
        return "partial"
    return "none"
