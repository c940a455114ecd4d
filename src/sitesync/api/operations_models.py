"""Response models of the studio-operations routes (bandwidth, dry-run plan, path mapping)."""

from __future__ import annotations

from pydantic import Field

from sitesync.api.models import _Out


class BandwidthSideOut(_Out):
    limit: float | None = Field(description="Bytes per second allowed now; null: no limit.")
    limit_text: str = Field(description="The limit for people, e.g. '2 MiB/s' or 'off'.")
    rate: float = Field(description="Bytes per second through this limit now (all worker processes of the machine).")
    rate_text: str
    total: int = Field(description="Bytes counted through this limit on this machine since it was first used.")


class BandwidthScopeOut(_Out):
    schedule: str | None = Field(description="The setting as written (rate, UP:DOWN or timetable); null: none.")
    changes_at: str | None = Field(description="When the timetable's next entry takes over (local time).")
    next: str | None = Field(description="The rate of that next entry.")
    up: BandwidthSideOut
    down: BandwidthSideOut


class BandwidthOut(_Out):
    site_id: str = Field(description="This machine's site id: limits and rates are this machine's.")
    machine: BandwidthScopeOut
    sites: dict[str, BandwidthScopeOut] = Field(description="Sites with a limit or recent traffic on this machine.")


class PlannedTransferOut(_Out):
    order: int = Field(description="Position in the order the worker would take the files.")
    project: str
    representation_id: int
    file_id: int
    path: str
    size: int
    priority: int
    attempts: int
    source: str | None = Field(description="The site the copy would be read from.")
    target: str


class PlanQueueOut(_Out):
    project: str
    target: str
    sources: list[str] = Field(description="Sites this worker would read from, usable now.")
    files: int = Field(description="Files the worker would transfer to the target now.")
    bytes: int
    listed: int = Field(description="How many of them are in `transfers` (at most `limit`).")


class PlanSkipOut(_Out):
    project: str
    site: str
    reason: str = Field(
        description="sync_off, paused, disabled, other_machine, not_selected, backed_off, no_source, "
        "retry_later, failed, in_progress or settings_error."
    )
    detail: str = Field(description="Why, in words, and what to do.")
    files: int
    bytes: int


class PlanTotalsOut(_Out):
    files: int
    bytes: int
    skipped_files: int
    skipped_bytes: int


class PlanOut(_Out):
    site_id: str = Field(description="The machine whose worker the plan is for.")
    generated_at: float
    transfers: list[PlannedTransferOut]
    queues: list[PlanQueueOut]
    skipped: list[PlanSkipOut]
    totals: PlanTotalsOut
    limit_per_queue: int
    truncated: bool = Field(description="Some queue has more files than `transfers` lists.")


class PathFileOut(_Out):
    representation_id: int
    file_id: int
    status_on_target: str = Field(description="The file's status on the target site ('none': not wanted there).")


class PathOut(_Out):
    path: str = Field(description="The path as given.")
    project: str
    from_site: str | None = Field(description="The site whose root holds the path (null for a catalog path).")
    from_platform: str | None = Field(description="The platform whose root location matched.")
    template: str = Field(description="The catalog path, {root[NAME]}/...")
    to_site: str
    platform: str = Field(description="The platform the mapped path is for.")
    mapped: str = Field(description="Where the file is (or would be) on the target site.")
    file: PathFileOut | None = Field(description="The published file at that catalog path, if any.")
