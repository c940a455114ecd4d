"""Request and response models of the workfile routes (``api/routes/workfiles.py``); the fields
mirror the facade's dataclasses in ``sitesync/workfiles/records.py``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sitesync.api.models import _In, _Out

WorkPath = Field(min_length=1, max_length=4096, description="The workfile's path relative to the project folder.")
Root = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The root holding the work area (default: the first).")


class WorkfileLockOut(_Out):
    user: str
    site: str
    machine: str
    acquired_at: float
    expires_at: float


class WorkfileStatusOut(_Out):
    root: str
    path: str
    state: Literal["in_sync", "modified_here", "newer_elsewhere", "syncing", "conflict", "deleted", "locked_by"]
    current: int | None
    here: int | None
    remote: int | None
    sites: dict[str, int | None]
    size: int | None
    made_on_site: str | None
    made_by_user: str | None
    deleted: bool
    in_conflict: bool
    lock: WorkfileLockOut | None
    error: str | None


class WorkfileVersionOut(_Out):
    number: int
    kind: str
    parent: int | None
    hash: str | None
    size: int | None
    mtime: float | None
    made_on_site: str
    made_by_user: str
    machine: str
    recorded_at: float
    kept: bool
    current: bool


class WorkfileConflictOut(_Out):
    id: int
    root: str
    path: str
    kind: str
    site: str
    local_version: int | None
    incoming_version: int | None
    conflict_path: str | None
    incoming_path: str | None
    detected_at: float
    blocking: bool
    message: str
    resolved_at: float | None
    resolution: str | None
    resolved_by: str | None


class WorkSyncOut(_Out):
    project: str
    scanned: dict[str, int]
    new: int
    modified: int
    deleted: int
    renamed: int
    unstable: list[str]
    versions: int
    conflicts: int
    transfers: int
    bytes: int
    deletions: int
    pruned: int
    errors: list[str]


class WorkResolutionOut(_Out):
    root: str
    path: str
    keep: str
    current: int | None
    own_workfiles: list[str]


class WorkUnlockOut(_Out):
    unlocked: bool


class WorkSyncIn(_In):
    """No options yet: send ``{}``."""


class WorkPathIn(_In):
    path: str = WorkPath
    root: str | None = Root


class WorkResolveIn(WorkPathIn):
    keep: Literal["local", "remote", "both"] = Field(
        description="local: this site's content wins; remote: the other wins; both: the other becomes its own workfile."
    )


class WorkRestoreIn(WorkPathIn):
    version: int = Field(ge=1, description="The version number to bring back.")


class WorkUnlockIn(WorkPathIn):
    force: bool = Field(False, description="Break another user's lock (recorded).")
