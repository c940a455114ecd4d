"""The Sync Queue's rows as the dashboard and the REST API show them: input parsing (versions,
statuses) and the plain dicts of a representation, one site's state of it, and an event. Pure
functions; the client's dashboard part (``facade/dashboard.py``) reads the store and calls these."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sitesync.errors import InvalidInputError
from sitesync.state.listing import SITE_STATUSES
from sitesync.state.records import version_label
from sitesync.state.schema import HERO_VERSION


def parse_version(value: str | int | None) -> int | None:
    """``3``, ``v003`` or ``hero`` -> the stored version number."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text == "hero":
        return HERO_VERSION
    digits = text[1:] if text.startswith("v") else text
    if not digits.isdigit():
        raise InvalidInputError(f"invalid version {value!r}: use a number such as 3 or v003, or hero")
    return int(digits)


def parse_statuses(value: str | Sequence[str] | None, what: str) -> tuple[str, ...]:
    """A comma-separated or listed set of site statuses."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        status = item.strip().lower()
        if not status:
            continue
        if status not in SITE_STATUSES:
            raise InvalidInputError(f"invalid {what} {item!r}: use one or more of {', '.join(SITE_STATUSES)}")
        out.append(status)
    return tuple(dict.fromkeys(out))


def site_side(
    site: str, state: dict[str, Any] | None, rep: dict[str, Any], live: dict[int, int] | None
) -> dict[str, Any]:
    if state is None:
        return {
            "site": site,
            "status": "none",
            "progress": 0.0,
            "updated_at": None,
            "files_present": 0,
            "files_failed": 0,
            "files_missing": 0,
            "files_no_source": 0,
            "paused": False,
            "priority": None,
            "attempts": 0,
            "last_error": None,
        }
    progress = float(state["progress"])
    if live and rep["total_size"]:
        in_flight = max(int(state["bytes_in_flight"]), sum(live.values()))
        progress = min(1.0, (int(state["bytes_present"]) + in_flight) / rep["total_size"])
    return {
        "site": site,
        "status": state["status"],
        "progress": round(progress, 4),
        "updated_at": state["updated_at"],
        "files_present": state["files_present"],
        "files_failed": state["files_failed"],
        "files_missing": state["files_missing"],
        "files_no_source": state["files_no_source"],
        "paused": bool(state["paused"]),
        "priority": state["priority"],
        "attempts": state["attempts"],
        "last_error": state["last_error"],
    }


def rep_fields(rep: dict[str, Any], project: str) -> dict[str, Any]:
    return {
        "id": rep["id"],
        "project": project,
        "folder": rep["folder"],
        "product": rep["product"],
        "version": version_label(rep["version"]),
        "version_number": rep["version"],
        "name": rep["name"],
        "files": rep["file_count"],
        "size": rep["total_size"],
        "created_at": rep["created_at"],
        "updated_at": rep["updated_at"],
        "published_by": rep["published_by"],
    }


def representation_label(rep: Any) -> str:
    """``seq01/sh010 / renderMain / v003 / exr``: how the dashboard names a representation."""
    return f"{rep.folder} / {rep.product} / {version_label(rep.version)} / {rep.name}"


def event_dict(event: Any, project_names: Mapping[int, str], labels: Mapping[int, str] | None = None) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at,
        "kind": event.kind,
        "project": project_names.get(event.project_id) if event.project_id is not None else None,
        "representation_id": event.representation_id,
        "representation": (labels or {}).get(event.representation_id) if event.representation_id else None,
        "file_id": event.file_id,
        "site": event.site,
        "source_site": event.source_site,
        "bytes": event.bytes,
        "duration": event.duration,
        "actor": event.actor,
        "message": event.message,
    }
