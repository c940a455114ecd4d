"""The typed results of the workfile part of ``sitesync.Client`` (``facade/workfiles.py``); the CLI
prints them, the REST API returns them as JSON (``dataclasses.asdict``)."""

from __future__ import annotations

from dataclasses import dataclass, field

# the states ``work_status`` gives a workfile, as seen from this machine's site
IN_SYNC = "in_sync"  # this site and the remote site hold the current version
MODIFIED_HERE = "modified_here"  # this site holds the current version; the remote site not yet
NEWER_ELSEWHERE = "newer_elsewhere"  # a newer version exists; this site will get it
SYNCING = "syncing"  # a transfer for this site is running now
CONFLICT = "conflict"  # changed on two sites from the same base: both kept, waits for resolve
DELETED = "deleted"  # the current version is a deletion
LOCKED_BY = "locked_by"  # another user or site holds the lock (``lock`` says who)
STATES = (IN_SYNC, MODIFIED_HERE, NEWER_ELSEWHERE, SYNCING, CONFLICT, DELETED, LOCKED_BY)


@dataclass(frozen=True)
class WorkfileLock:
    """Who is editing a workfile (advisory, Perforce-style); expires at ``expires_at`` (epoch)."""

    user: str
    site: str
    machine: str
    acquired_at: float
    expires_at: float


@dataclass(frozen=True)
class WorkfileVersion:
    """One recorded content of a workfile."""

    number: int
    kind: str  # edit | delete | restore | resolve | conflict
    parent: int | None  # the number of the version it was made from
    hash: str | None  # xxh3_128 hex digest; None for a deletion
    size: int | None
    mtime: float | None
    made_on_site: str
    made_by_user: str
    machine: str
    recorded_at: float
    kept: bool  # recoverable from the versions area on the remote site
    current: bool  # the workfile's head


@dataclass(frozen=True)
class WorkfileStatus:
    """One workfile as this machine sees it."""

    root: str
    path: str  # relative to the project's folder on the root
    state: str  # one of STATES
    current: int | None  # the head version's number
    here: int | None  # the version this machine's site holds (None: nothing)
    remote: int | None  # the version the remote site holds
    sites: dict[str, int | None]  # every workfile site -> the version it holds
    size: int | None
    made_on_site: str | None  # where the current version was made
    made_by_user: str | None
    deleted: bool
    in_conflict: bool
    lock: WorkfileLock | None
    error: str | None  # the last transfer error for this site, if any


@dataclass(frozen=True)
class WorkfileConflict:
    """Two contents of one workfile from the same base, both kept."""

    id: int
    root: str
    path: str
    kind: str  # edit-edit | delete-edit | locked-edit
    site: str  # where the conflicting change (or deletion) was made
    local_version: int | None  # that site's content (None: it deleted the file)
    incoming_version: int | None  # the version it collided with
    conflict_path: str | None  # where the site's content is placed beside the file on the other sites
    incoming_path: str | None  # where the other content is placed beside the file on ``site``
    detected_at: float
    blocking: bool  # propagation of the path waits for a resolution
    message: str
    resolved_at: float | None = None
    resolution: str | None = None
    resolved_by: str | None = None


@dataclass
class WorkSyncResult:
    """What one ``work_sync`` pass did."""

    project: str
    scanned: dict[str, int] = field(default_factory=dict)  # site -> workfiles seen
    new: int = 0
    modified: int = 0
    deleted: int = 0
    renamed: int = 0
    unstable: list[str] = field(default_factory=list)  # still being written: taken next time
    versions: int = 0  # versions recorded
    conflicts: int = 0  # conflicts detected
    transfers: int = 0  # copies written (uploads, downloads, kept versions, conflict copies)
    bytes: int = 0
    deletions: int = 0  # recorded deletions carried out on sites
    pruned: int = 0  # kept versions removed after keep_versions_days
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkResolution:
    """The outcome of ``work_resolve``."""

    root: str
    path: str
    keep: str  # local | remote | both
    current: int | None  # the head's number afterwards
    own_workfiles: list[str] = field(default_factory=list)  # ``both``: the conflict copies now tracked


__all__ = [
    "CONFLICT",
    "DELETED",
    "IN_SYNC",
    "LOCKED_BY",
    "MODIFIED_HERE",
    "NEWER_ELSEWHERE",
    "STATES",
    "SYNCING",
    "WorkResolution",
    "WorkSyncResult",
    "WorkfileConflict",
    "WorkfileLock",
    "WorkfileStatus",
    "WorkfileVersion",
]
