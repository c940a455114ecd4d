"""Request and response models of the REST API (they are its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

# Names as the settings define them ('local' is this machine's site); ids fit the database's integers.
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]

SiteStatus = Literal[
    "lost", "failed", "no_source", "removing", "in_progress", "queued", "paused", "partial", "present", "none"
]
ReplicaStatus = Literal["queued", "in_progress", "present", "failed", "removing", "missing", "no_source"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(_Out):
    detail: str = Field(description="What is wrong and what to do, in one line.")
    error: str = Field(description="The error class, e.g. NotFoundError, GuardRefusedError.")


# ---------------------------------------------------------------------- health and progress


class WorkerState(_Out):
    running: bool = Field(description="A worker runs inside this server process.")
    paused: bool = Field(description="This machine's workers are paused (or all syncing is).")
    id: str | None = None
    unavailable_sites: dict[str, str] = Field(
        default_factory=dict, description="'project/site' -> why the worker could not reach it at its last try."
    )


class HealthOut(_Out):
    status: Literal["ok"]
    version: str
    site_id: str = Field(description="This machine's own site id.")
    database: str = Field(description="The state database, password masked.")
    auth: bool = Field(description="Whether API requests need the token (bearer header or session cookie).")
    worker: WorkerState


class LoginIn(_In):
    token: str = Field(min_length=1, max_length=500, description="The server's API token.")


class SessionOut(_Out):
    auth: bool = Field(description="Whether this server needs a token at all.")
    expires_in: int | None = Field(None, description="Seconds the session cookie that was set is valid.")


class LoginLinkIn(_In):
    """No fields: send ``{}`` (changes are JSON, see the guard)."""


class LoginLinkOut(_Out):
    url: str = Field(description="Opening it once in a browser logs the dashboard in.")
    expires_in: int = Field(description="Seconds the link stays valid if nobody opens it.")


class TransferOut(_Out):
    representation_id: int | None
    file_id: int | None
    path: str
    site: str
    source_site: str
    size: int
    done: int
    progress: float
    started_at: float


class WorkerProgressOut(_Out):
    files_done: int
    files_failed: int
    files_claimed: int
    bytes_done: int
    bytes_claimed: int
    started_at: float
    bytes_per_second: float = Field(description="Average since the worker started.")
    transfers: list[TransferOut]


class PauseOut(_Out):
    scope: Literal["worker", "everything", "project", "site", "project site"]
    project: str | None
    site: str | None
    paused_at: float
    paused_by: str


class ProgressOut(_Out):
    marker: str = Field(description="Changes whenever something was recorded or a transfer started or ended.")
    last_event_id: int
    worker: WorkerProgressOut | None = Field(description="The in-process worker's live progress, if one runs.")
    worker_state: WorkerState
    pauses: list[PauseOut]


# ---------------------------------------------------------------------- projects and sites


class ProjectOut(_Out):
    name: str
    enabled: bool
    sync_enabled: bool
    paused: bool
    active_site: str | None
    remote_site: str | None
    state: Literal["syncing", "idle", "paused", "disabled", "failed", "error"]
    failed: int = Field(description="Representations failed on some site.")
    lost: int = Field(0, description="Representations lost on some site (a copy gone, no other copy to fetch).")
    no_source: int = Field(0, description="Representations waiting for a source (no site holds a verified copy).")
    in_progress: int
    queued: int
    counts: dict[str, int] = Field(description="Representations per overall status (present left out).")
    unavailable_sites: list[str]
    error: str | None = None


class SiteOut(_Out):
    name: str
    provider: str
    builtin: bool
    this_machine: bool = False
    options: dict[str, Any] = Field(description="Provider options of the shared settings; secrets are masked.")
    local_options: dict[str, Any] = Field(
        default_factory=dict, description="The server machine's own options of the site; secrets are masked."
    )
    refused: str | None = Field(
        None,
        description="With ?project=: why the site's settings are not used (e.g. a program path in shared settings).",
    )
    roots: dict[str, Any] | None = None
    alternative_sites: list[str] = Field(default_factory=list)
    resolved_roots: dict[str, str] | None = Field(None, description="With ?project=: where each root is here.")
    enabled: bool | None = None
    paused: bool
    available: bool | None = Field(None, description="False if the worker could not reach it; None if unknown.")
    unavailable_reason: str | None = None


class SiteCheckIn(_In):
    project: Name | None = Field(None, description="Check the site as this project configures it.")


class SiteCheckOut(_Out):
    site: str
    available: bool | None
    reason: str | None


class SettingWrite(_In):
    key: str = Field(
        min_length=1,
        max_length=500,
        pattern=r"^[A-Za-z0-9_.@-]+$",
        description="Dotted key, e.g. retry_count, sites.cloud.enabled or system.enabled.",
    )
    value: Any = Field(None, description="JSON value; null removes the key (falls back to the layer below).")
    project: Name | None = Field(None, description="The project (default: the default project).")
    local: bool = Field(False, description="Write this machine's local settings instead.")

    @field_validator("value")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        _check_text(value)
        return value


def _check_text(value: Any) -> None:
    """Strings must be storable and printable as UTF-8 text: no NUL, no lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)


# ---------------------------------------------------------------------- the Sync Queue


class SiteSideOut(_Out):
    site: str
    status: SiteStatus
    progress: float = Field(ge=0, le=1)
    updated_at: float | None = Field(description="When a file of it last changed on this site.")
    files_present: int
    files_failed: int
    files_missing: int = Field(description="Verified copies found gone or changed with no other copy: lost here.")
    files_no_source: int = Field(description="Files wanted here that no site holds a verified copy of.")
    paused: bool = Field(description="The representation is paused on this site (whatever its status).")
    priority: int | None
    attempts: int
    last_error: str | None


class QueueItemOut(_Out):
    id: int
    project: str
    folder: str
    product: str
    version: str = Field(description="v003 or hero.")
    version_number: int = Field(description="-1 for hero.")
    name: str
    files: int
    size: int
    created_at: float
    updated_at: float
    published_by: str
    active: SiteSideOut
    remote: SiteSideOut
    status: SiteStatus = Field(description="Overall: the site state needing the most attention.")
    status_site: str | None = Field(description="The site the overall status comes from.")
    priority: int | None = Field(description="The highest priority on any site.")


class QueuePausedOut(_Out):
    project: bool
    active_site: bool
    remote_site: bool


class QueuePageOut(_Out):
    project: str
    active_site: str
    remote_site: str
    sort: str
    order: Literal["asc", "desc"]
    offset: int
    limit: int
    total: int = Field(description="Representations matching the filters.")
    paused: QueuePausedOut
    items: list[QueueItemOut]


class RepresentationOut(_Out):
    id: int
    project: str
    folder: str
    product: str
    version: str
    version_number: int
    name: str
    files: int
    size: int
    created_at: float
    updated_at: float
    published_by: str


class DetailSiteOut(SiteSideOut):
    role: Literal["active", "remote"] | None
    wanted: bool
    paused: bool
    requested_by: str | None


class ReplicaOut(_Out):
    site: str
    status: ReplicaStatus
    progress: float
    attempts: int
    last_error: str | None
    paused: bool
    priority: int
    updated_at: float
    source_site: str | None
    next_attempt_at: float | None = Field(None, description="When a file that failed is tried again (queued).")


class FileOut(_Out):
    id: int
    path: str
    size: int
    hash: str
    replicas: list[ReplicaOut]


class EventOut(_Out):
    id: int
    at: float
    kind: str
    project: str | None
    representation_id: int | None
    representation: str | None = Field(None, description="folder / product / version / name of it.")
    file_id: int | None
    site: str | None
    source_site: str | None
    bytes: int | None
    duration: float | None
    actor: str
    message: str | None


class DetailOut(_Out):
    representation: RepresentationOut
    active_site: str
    remote_site: str
    sites: list[DetailSiteOut]
    files: list[FileOut]
    events: list[EventOut] = Field(description="The latest 20 events of this representation.")


class EventsOut(_Out):
    events: list[EventOut]
    last_id: int | None = Field(description="The newest id returned (poll with after_id=last_id).")


# ---------------------------------------------------------------------- actions

PRIORITY = Field(None, ge=1, le=1000, description="1-1000, higher goes first.")


class WantIn(_In):
    site: Name | None = Field(None, description="Default: the active (download) or remote (upload) site.")
    priority: int | None = PRIORITY


class ResetIn(_In):
    scope: Literal["active", "remote", "all"] = Field(
        "all",
        description="active/remote: that site, verified copies re-copied too where another copy exists; "
        "all: every site it is wanted on, failed and waiting files get fresh attempts.",
    )
    site: Name | None = Field(None, description="This site instead of a scope (verified copies re-copied too).")
    file_id: Id | None = Field(None, description="Only this file of the representation.")


class RemoveIn(_In):
    site: Name | None = Field(None, description="Default: the active site.")


class PriorityIn(_In):
    priority: int = Field(ge=1, le=1000)
    site: Name | None = Field(None, description="Default: every site it is wanted on.")


class SiteIn(_In):
    site: Name | None = Field(None, description="Default: every site it is wanted on.")


class ActionOut(_Out):
    representation_id: int
    ok: bool
    message: str
    result: dict[str, Any] | None = None
    error: str | None = Field(None, description="The error class when ok is false.")


BatchAction = Literal["download", "upload", "reset", "remove", "priority", "pause", "resume"]


class BatchIn(_In):
    action: BatchAction
    representation_ids: list[Id] = Field(min_length=1, max_length=1000)
    site: Name | None = None
    priority: int | None = PRIORITY
    scope: Literal["active", "remote", "all"] = "all"


class BatchOut(_Out):
    action: BatchAction
    ok: int
    failed: int
    results: list[ActionOut]


class PauseIn(_In):
    project: Name | None = None
    site: Name | None = None
    worker: bool = Field(False, description="This machine's workers (give it alone).")


class PauseResultOut(_Out):
    scope: str
    paused: bool
    project: str | None = None
    site: str | None = None
    site_id: str | None = None
    changed: bool
