"""Helpers shared by the parts of the client facade: parsing command-line style input, the
plain dictionaries the faces receive, and small checks."""

from __future__ import annotations

import getpass
import os
from collections.abc import Sequence
from typing import Any

from sitesync.errors import (
    InvalidInputError,
    SitesyncError,
    UserError,
)
from sitesync.machine_view import SECRET_MASK, ProjectView
from sitesync.paths import check_root_name
from sitesync.settings.models import (
    ANY_PLATFORM,
    PLATFORMS,
)
from sitesync.settings.validation import parse_cli_value
from sitesync.state.queries import RepresentationSummary
from sitesync.state.records import RepresentationRow
from sitesync.status_rollup import summarize_site_state

PRIORITY_MIN, PRIORITY_MAX = 1, 1000
MAX_ID = 2**63 - 1  # ids are 64-bit integers in both databases
LOCAL_TOP_KEYS = {"local_root", "concurrency", "bandwidth", "sites"}


def parse_roots(items: Sequence[str], *, local_paths: bool = True) -> dict[str, dict[str, str]]:
    """``NAME=PATH`` (every platform) or ``NAME@PLATFORM=PATH`` -> {root: {platform: path}}.

    ``local_paths``: the paths are OS paths (made absolute); off for remote storage, where
    ``bucket/prefix`` is a location inside the remote, not relative to the current folder."""
    roots: dict[str, dict[str, str]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise InvalidInputError(f"invalid --root {item!r}: use NAME=PATH or NAME@PLATFORM=PATH")
        root, _, platform = name.partition("@")
        platform = platform or ANY_PLATFORM
        if platform not in (*PLATFORMS, ANY_PLATFORM):
            raise InvalidInputError(f"invalid --root {item!r}: platform must be windows, linux or darwin")
        try:
            check_root_name(root)
        except UserError as exc:
            raise InvalidInputError(f"invalid --root {item!r}: {exc}") from None
        if local_paths and not (path.startswith(("/", "\\\\")) or path[1:3] in (":/", ":\\") or "://" in path):
            path = os.path.abspath(os.path.expanduser(path))
        roots.setdefault(root, {})[platform] = path
    return roots


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"invalid --set {item!r}: use KEY=VALUE")
        out[key] = parse_cli_value(value)
    return out


# ---------------------------------------------------------------------- helpers


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _rep_id(value: Any) -> int:
    try:
        rep_id = int(value)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"invalid representation id {value!r}: use the number `sitesync publish` printed"
        ) from None
    if rep_id <= 0:
        raise InvalidInputError(f"invalid representation id {value!r}: ids are positive numbers")
    if rep_id > MAX_ID:
        raise InvalidInputError(
            f"invalid representation id {value!r}: no id is that large; see `sitesync status PROJECT`"
        )
    return rep_id


def check_count(value: Any, what: str) -> int:
    """A paging number or an id given as an option: a whole number from 0 to the largest id."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise InvalidInputError(f"invalid {what} {value!r}: use a whole number from 0 to {MAX_ID}")
    return value


def _check_priority(priority: int) -> None:
    if not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise InvalidInputError(
            f"invalid priority {priority!r}: use a whole number from {PRIORITY_MIN} to {PRIORITY_MAX} (higher goes first)"
        )


def _unmask(new: Any, old: Any) -> Any:
    """Imported settings: a masked secret keeps the stored value."""
    if new == SECRET_MASK:
        return old
    if isinstance(new, dict):
        old = old if isinstance(old, dict) else {}
        return {k: _unmask(v, old.get(k)) for k, v in new.items()}
    return new


def _location(view: ProjectView | None, site: str, path: str) -> str | None:
    if view is None or site not in view.sites:
        return None
    try:
        return view.sites[site].resolve(path)
    except SitesyncError:
        return None


def _rep_dict(rep: RepresentationRow) -> dict[str, Any]:
    return {
        "id": rep.id,
        "project": rep.project,
        "folder": rep.folder,
        "product": rep.product,
        "version": rep.version_label,
        "name": rep.name,
        "files": rep.file_count,
        "size": rep.total_size,
        "created_at": rep.created_at,
        "updated_at": rep.updated_at,
        "published_by": rep.published_by,
    }


def _summary_dict(summary: RepresentationSummary, sites: Sequence[str]) -> dict[str, Any]:
    rep = summary.representation
    out = _rep_dict(rep)
    out["sites"] = {}
    for site in sites:
        state = summary.sites.get(site)
        if state is None:
            out["sites"][site] = {"status": "none", "progress": 0.0, "present": 0}
            continue
        total = rep.total_size or 0
        progress = (
            (state.bytes_present + state.bytes_in_flight) / total
            if total
            else (1.0 if state.counts.get("present", 0) == rep.file_count else 0.0)
        )
        out["sites"][site] = {
            "status": summarize_site_state(state, rep.file_count),
            "progress": round(min(1.0, progress), 4),
            "present": state.counts.get("present", 0),
            "counts": state.counts,
            "priority": state.priority,
            "paused": state.paused,
            "updated_at": state.updated_at,
            "last_error": state.last_error,
        }
    return out
