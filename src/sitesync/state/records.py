"""Plain records the state store returns and accepts. No SQL here, no behaviour beyond formatting."""

from __future__ import annotations

from dataclasses import dataclass, field

from sitesync.state.schema import HERO_VERSION


def version_label(version: int) -> str:
    return "hero" if version == HERO_VERSION else f"v{version:03d}"


@dataclass(frozen=True, slots=True)
class ProjectRow:
    id: int
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class RepresentationKey:
    folder: str
    product: str
    version: int  # HERO_VERSION for hero
    name: str

    @property
    def label(self) -> str:
        return f"{self.folder}/{self.product}/{version_label(self.version)}/{self.name}"


@dataclass(frozen=True, slots=True)
class RepresentationRow:
    id: int
    project_id: int
    project: str
    folder: str
    product: str
    version: int
    name: str
    file_count: int
    total_size: int
    content_rev: int
    created_at: float
    updated_at: float
    published_by: str

    @property
    def key(self) -> RepresentationKey:
        return RepresentationKey(self.folder, self.product, self.version, self.name)

    @property
    def version_label(self) -> str:
        return version_label(self.version)


@dataclass(frozen=True, slots=True)
class FileFacts:
    """One file of a publish: catalog path template, size and content hash."""

    path: str
    size: int
    hash_algo: str
    hash: str
    # the storage's fingerprint of the file where it was published (see identity.content.Seen)
    mtime: float | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class FileRow:
    id: int
    representation_id: int
    path: str
    size: int
    hash_algo: str
    hash: str


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    id: int
    file_id: int
    representation_id: int
    site: str
    status: str
    priority: int
    paused: bool
    attempts: int
    next_attempt_at: float
    last_error: str | None
    last_failed_at: float | None
    present_since: float | None
    bytes_done: int
    lease_owner: str | None
    lease_expires_at: float | None
    source_site: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class PublishResult:
    representation_id: int
    created: bool  # False: an existing representation was published again
    changed_files: int  # files whose content changed (re-publish) or were added
    requeued_sites: tuple[str, ...]  # sites that held old content and were queued again
    queued_sites: tuple[str, ...]


@dataclass(slots=True)  # not frozen: a claim builds up to 1,000 at once, 0.45 µs each instead of 3.7
class ClaimedReplica:
    """A replica this worker holds a lease on, with what it needs to transfer it (treat as read-only)."""

    replica_id: int
    file_id: int
    representation_id: int
    project_id: int
    site: str
    path: str
    size: int
    hash_algo: str
    hash: str
    attempts: int
    priority: int
    sources: tuple[str, ...]  # sites holding a verified copy
    # what sitesync last verified at the target location (a copy it may replace; see identity.content)
    seen_size: int | None = None
    seen_hash: str | None = None
    seen_mtime: float | None = None
    seen_ref: str | None = None


@dataclass(slots=True)
class Outcome:
    """What happened to one claimed replica; written to the database in batches.

    The worker decides what a failure means (``sitesync.errors.decide``); the store writes it as
    given: ``retry`` queues the file again after ``delay`` with ``attempts``, ``failed`` marks it
    failed with ``attempts``, ``release`` puts it back untouched (after ``delay``)."""

    replica_id: int
    file_id: int
    representation_id: int
    project_id: int
    site: str
    # "present" | "retry" | "failed" | "release" (put back untouched) | "source_lost" (the source
    # copy is gone: it is recorded missing and the file re-planned, untouched)
    kind: str
    source_site: str | None = None
    bytes: int = 0
    duration: float = 0.0
    error: str | None = None
    attempts: int = 0  # retry/failed: the file's attempts after this one
    delay: float = 0.0  # retry/release: seconds until the file may be tried again
    note: str | None = None  # retry/failed: the attempt in words, for the history ("attempt 2/3, ...")
    alternatives: tuple[str, ...] = ()  # sites that are the same storage: recorded present too
    unavailable_site: str | None = None  # release because of a condition of this site
    condition: str | None = None  # that condition ("unreachable"...)
    adopted: bool = False  # present: the expected content was already there, nothing was copied
    mtime: float | None = None  # present: the storage fingerprint of the verified copy
    ref: str | None = None
    lost_alternatives: tuple[str, ...] = ()  # source_lost: the source site's alternatives (one storage)


@dataclass(frozen=True, slots=True)
class RemovalItem:
    """One copy a removal is bound to: its replica, file and catalog path, and the content the
    removal was asked for (what was last verified there: it is deleted only if still that)."""

    replica_id: int
    file_id: int
    representation_id: int
    path: str
    size: int
    hash_algo: str
    hash: str
    seen_mtime: float | None = None
    provider_ref: str | None = None


@dataclass(frozen=True, slots=True)
class RemovalTicket:
    """Replicas the remove guard allowed and marked ``removing`` (leased by ``owner``); the
    caller checks and deletes the copies, then finishes or aborts each."""

    site: str
    representation_id: int
    owner: str
    replicas: tuple[RemovalItem, ...]
    dropped_wanted: int  # records without a copy (queued, failed, waiting, lost) dropped


@dataclass(frozen=True, slots=True)
class SiteSummary:
    site: str
    counts: dict[str, int] = field(default_factory=dict)
    bytes_present: int = 0
    bytes_total: int = 0


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    at: float
    kind: str
    project_id: int | None
    representation_id: int | None
    file_id: int | None
    site: str | None
    source_site: str | None
    bytes: int | None
    duration: float | None
    actor: str
    message: str | None
