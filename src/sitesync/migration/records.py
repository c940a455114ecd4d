"""What the importers read from another system, before anything is written: representations with
their files and each file's state per site, and the report of what was (not) taken over."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sitesync.state.imports import ReplicaImport

PRESENT, QUEUED, FAILED = "present", "queued", "failed"


@dataclass
class ImportedSite:
    """A representation on one site: its priority, pause, and each file's state (by path) as the
    other system recorded it."""

    priority: int | None = None
    paused: bool = False
    files: dict[str, ReplicaImport] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportedFile:
    path: str  # catalog path template {root[NAME]}/...
    size: int


@dataclass
class ImportedRepresentation:
    source_id: str
    folder: str
    product: str
    version: int | str
    name: str
    files: list[ImportedFile]
    sites: dict[str, ImportedSite] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.product}/{self.version}/{self.name}"


@dataclass
class Report:
    """What an import did and did not take over; ``unmapped`` counts each key it ignored."""

    documents: int = 0  # representations (or lines) the export held
    problems: list[dict[str, str]] = field(default_factory=list)  # representations not imported, why
    unmapped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (key, reason) -> how often
    notes: list[str] = field(default_factory=list)

    def problem(self, source_id: str, what: str) -> None:
        self.problems.append({"source_id": source_id, "problem": what})

    def not_mapped(self, key: str, reason: str, count: int = 1) -> None:
        self.unmapped[(key, reason)] += count

    def unmapped_list(self) -> list[dict[str, Any]]:
        return [{"key": k, "reason": r, "count": n} for (k, r), n in sorted(self.unmapped.items())]


def timestamp(value: Any) -> float | None:
    """Epoch seconds from what exports hold: numbers (seconds, or milliseconds when huge), ISO 8601
    strings, MongoDB extended JSON ``{"$date": ...}``."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        if "$date" in value:
            return timestamp(value["$date"])
        if "$numberLong" in value:
            return int(value["$numberLong"]) / 1000.0
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.timestamp()
    return None


def plain(value: Any) -> Any:
    """MongoDB extended JSON (``$oid``, ``$numberInt``, ``$numberLong``, ``$numberDouble``) as plain
    values; ``$date`` stays a dict for ``timestamp``."""
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key == "$oid":
                return str(inner)
            if key in ("$numberInt", "$numberLong"):
                return int(inner)
            if key == "$numberDouble":
                return float(inner)
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def whole_number(value: Any) -> int | None:
    value = plain(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None
