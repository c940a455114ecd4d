"""How a representation's per-file replica counts on one site read as one word.

Order of precedence: lost (a copy the catalog recorded here is gone and no other site holds the
file), removing, failed, in progress, no source (wanted, but no site holds a verified copy to read
from), paused, queued, present (all files), partial (some files present, none wanted), none (not on
the site and not wanted there).
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
    if c.get("missing"):
        return "lost"
    if c.get("removing"):
        return "removing"
    if c.get("failed"):
        return "failed"
    if c.get("in_progress"):
        return "in_progress"
    if c.get("no_source"):
        return "no_source"
    if c.get("queued"):
        return "paused" if state.paused else "queued"
    present = c.get("present", 0)
    if present and present >= file_count:
        return "present"
    if present:
        return "partial"
    return "none"
