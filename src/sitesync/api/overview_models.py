"""Request and response models of the coordinator's routes: the overview strip, the Sites view
with numbers, site usage and test, bulk actions on every match of a filter, and settings forms."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sitesync.api.models import PRIORITY, BatchAction, BatchOut, Name, _In, _Out

# ---------------------------------------------------------------------- overview


class StateCountOut(_Out):
    state: str = Field(description="An overall state (failed, queued, in_progress, paused, lost, present, ...).")
    count: int = Field(description="Representations in it.")


class TransfersOut(_Out):
    representations: int
    files: int = Field(description="Files being transferred now.")
    bytes_done: int = Field(description="Bytes already on the target sites of those representations.")
    bytes_total: int = Field(description="Bytes those representations hold when done.")
    bytes_per_second: float | None = Field(description="The in-process worker's average rate since it started.")
    eta_seconds: float | None = Field(description="Seconds to finish at that rate (null without a worker).")


class OverviewOut(_Out):
    project: str
    total: int = Field(description="Representations of the project.")
    states: list[StateCountOut] = Field(description="Attention order; states a client does not know come last.")
    transfers: TransfersOut


# ---------------------------------------------------------------------- sites


class SiteHealthOut(_Out):
    state: Literal["reachable", "backed_off", "unknown", "elsewhere"] = Field(
        description="backed_off: the worker could not reach it and tries again at `until`; unknown: no worker "
        "in this server; elsewhere: another machine's own site."
    )
    reason: str | None
    until: float | None


class SiteEventOut(_Out):
    at: float
    representation_id: int | None
    source_site: str | None
    bytes: int | None
    message: str | None


class SiteFilesOut(_Out):
    present: int
    queued: int
    in_progress: int
    failed: int
    removing: int


class SiteBytesOut(_Out):
    present: int
    queued: int
    in_progress: int
    failed: int


class SiteStatsOut(_Out):
    name: str
    provider: str
    this_machine: bool
    roles: list[Literal["active", "remote", "always"]]
    enabled: bool
    paused: bool
    health: SiteHealthOut
    files: SiteFilesOut
    bytes: SiteBytesOut
    last_transfer: SiteEventOut | None
    last_error: SiteEventOut | None
    capabilities: list[str]
    usage_known: bool = Field(description="Whether GET /sites/{name}/usage can tell the free space.")


class SiteUsageOut(_Out):
    site: str
    available: bool | None
    known: bool = Field(description="The provider told the space (free/total may still be null: no limit).")
    free: int | None
    total: int | None
    reason: str | None


class SiteTestIn(_In):
    project: Name | None = Field(None, description="Test the site as this project configures it.")


class SiteCheckResultOut(_Out):
    name: str
    ok: bool
    skipped: bool
    seconds: float
    detail: str


class SiteTestOut(_Out):
    site: str
    provider: str
    description: str
    project: str
    root: str
    location: str
    options: dict[str, Any] = Field(description="Secrets masked.")
    capabilities: list[str]
    checks: list[SiteCheckResultOut]
    passed: int
    skipped: int
    failed: int
    ok: bool
    seconds: float


# ---------------------------------------------------------------------- bulk on a filter


class QueueFilterIn(_In):
    q: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    folder: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    product: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    name: str | None = Field(None, max_length=200, pattern=r"^[^\x00]*$")
    version: str | None = Field(None, pattern=r"^(hero|v?[0-9]{1,9})$")
    active_status: str | None = Field(None, max_length=200, pattern=r"^[a-z_,]*$")
    remote_status: str | None = Field(None, max_length=200, pattern=r"^[a-z_,]*$")
    status: str | None = Field(None, max_length=200, pattern=r"^[a-z_,]*$")
    active_site: Name | None = None
    remote_site: Name | None = None


class BulkIn(_In):
    action: BatchAction
    filter: QueueFilterIn = Field(default_factory=QueueFilterIn, description="The Sync Queue filters.")
    expected: int = Field(
        ge=0,
        le=2**31 - 1,
        description="How many matches the user confirmed; refused (409) when the filter now matches more.",
    )
    site: Name | None = None
    priority: int | None = PRIORITY
    scope: Literal["active", "remote", "all"] = "all"


class BulkOut(BatchOut):
    matched: int = Field(description="Representations the filter matched (all were acted on).")


# ---------------------------------------------------------------------- settings forms


class SettingLayerOut(_Out):
    layer: str = Field(description="default, system, default project, project or this machine.")
    value: Any = Field(None, description="Null for secrets (write-only).")
    set: bool


class SettingFieldOut(_Out):
    key: str = Field(description="The dotted key of the value.")
    name: str
    description: str
    kind: Literal["boolean", "integer", "number", "text", "choice", "list", "object", "secret", "json"]
    nullable: bool
    value: Any = Field(None, description="The effective value here; null for secrets.")
    source: str = Field(description="The layer the effective value comes from.")
    is_set: bool = Field(description="A layer above the default sets it (for secrets: a secret is stored).")
    layers: list[SettingLayerOut]
    writes: dict[str, dict[str, Any]] = Field(description="Layer -> the body of PUT /settings that writes it there.")
    choices: list[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusiveMinimum: float | None = None
    exclusiveMaximum: float | None = None
    minLength: int | None = None
    maxLength: int | None = None


class SettingGroupOut(_Out):
    id: str
    title: str
    provider: str | None = None
    fields: list[SettingFieldOut]


class SettingsFormOut(_Out):
    project: str
    site_id: str
    groups: list[SettingGroupOut]
