"""The state schema (SQLAlchemy Core), identical on SQLite and PostgreSQL.

The Alembic migrations in ``state/migrations`` create exactly this; a test compares the two.
Times are float epoch seconds (UTC) so comparisons are cheap and identical on both databases.
A representation's ``version`` is an integer; ``HERO_VERSION`` (-1) stands for ``hero``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

HERO_VERSION = -1

# The one definition of each of these values; everything else imports them from here.
DEFAULT_PRIORITY = 50  # a request's priority when none is given (1-1000, higher first)
ALL = "*"  # in pauses: every project / every site
# In pauses, (WORKER_PAUSE, site id) pauses every worker on the machine with that site id.
# Project names cannot start with '@', so it never matches a project.
WORKER_PAUSE = "@worker"

# Replica statuses (DESIGN §4). "removing" marks a copy being deleted: it is no longer a trusted
# source, and a crash mid-removal leaves a record that the next remove or worker finishes.
# "missing": the catalog recorded a verified copy here, it was found gone or changed, and no other
# storage holds the file (the location log corrected: the file is lost on this site; it comes back
# when the file is restored and validated, or published again). "no_source": wanted here, but no
# site holds a verified copy to read from; it becomes "queued" again as soon as one does.
QUEUED = "queued"
IN_PROGRESS = "in_progress"
PRESENT = "present"
FAILED = "failed"
REMOVING = "removing"
MISSING = "missing"
NO_SOURCE = "no_source"
STATUSES = (QUEUED, IN_PROGRESS, PRESENT, FAILED, REMOVING, MISSING, NO_SOURCE)
# records of a file on a site that holds no copy of it there (wanted, failed, waiting, lost)
NOT_HELD = (QUEUED, FAILED, NO_SOURCE, MISSING)

NAME = String(64)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

settings = Table(
    "settings",
    metadata,
    # 'system', 'project:__default__' or 'project:<name>'
    Column("scope", String(100), primary_key=True),
    Column("document", Text, nullable=False),
    # a database-wide counter: every write takes max+1, so readers notice any change with one query
    Column("version", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

representations = Table(
    "representations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("folder", String(1024), nullable=False),
    Column("product", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("content_rev", Integer, nullable=False, server_default=text("1")),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("published_by", String(200), nullable=False),
    # paused on every site, including sites it is requested on after the pause
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("project_id", "folder", "product", "version", "name"),
)
# A project's representations in publish order: preferred-content rules page through it.
Index("ix_representations_project_id_id", representations.c.project_id, representations.c.id)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("representation_id", Integer, ForeignKey("representations.id", ondelete="CASCADE"), nullable=False),
    Column("path", String(4200), nullable=False),
    # xxh3-128 of the path: long paths overflow a PostgreSQL btree entry, their digest does not
    Column("path_key", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("hash_algo", String(16), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("representation_id", "path_key"),
)
Index("ix_files_path_key", files.c.path_key)

replicas = Table(
    "replicas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_id", Integer, ForeignKey("files.id", ondelete="CASCADE"), nullable=False),
    # denormalised from files/representations so the queue and the dashboard never join to filter
    Column("representation_id", Integer, nullable=False),
    Column("project_id", Integer, nullable=False),
    Column("site", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text),
    Column("last_failed_at", Float),
    Column("present_since", Float),
    Column("bytes_done", BigInteger, nullable=False),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Float),
    Column("source_site", NAME),
    # What sitesync last verified at this replica's location (kept when the replica is queued again,
    # so a replacement can tell its own old copy from a file someone else put there): the size, the
    # content hash ("algo:hex"), and the storage's fingerprint of that copy (modification time and
    # ``provider_ref``, the provider's own id: an inode, an object version, a Drive file id).
    Column("provider_ref", String(1024)),
    Column("seen_size", BigInteger),
    Column("seen_hash", String(160)),
    Column("seen_mtime", Float),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("file_id", "site"),
)
# The work queue: one index range per (project, site), already in priority order.
Index(
    "ix_replicas_queue",
    replicas.c.project_id,
    replicas.c.site,
    replicas.c.priority.desc(),
    replicas.c.id,
    sqlite_where=text("status = 'queued' AND paused = 0"),
)
# When the next retry of a queue falls due (its back-off ends): idle workers sleep until then.
Index(
    "ix_replicas_due",
    replicas.c.project_id,
    replicas.c.site,
    replicas.c.next_attempt_at,
    # retries only (attempts > 0): small, and of no use to the claim, which keeps ix_replicas_queue
    sqlite_where=text("status = 'queued' AND paused = 0 AND attempts > 0"),
)
# Expired leases (crashed workers): only rows that hold a lease are in it.
Index(
    "ix_replicas_lease",
    replicas.c.lease_expires_at,
    sqlite_where=text("lease_owner IS NOT NULL"),
)
# Their PostgreSQL ``WHERE`` clauses are added by ``add_postgresql_options()`` when a PostgreSQL
# engine is made: a ``postgresql_*`` option loads SQLAlchemy's PostgreSQL dialect, which a process
# on SQLite does not need (about 60 ms of every start-up).
_POSTGRESQL_WHERE = {
    "ix_replicas_queue": "status = 'queued' AND NOT paused",
    "ix_replicas_due": "status = 'queued' AND NOT paused AND attempts > 0",
    "ix_replicas_lease": "lease_owner IS NOT NULL",
}


def add_postgresql_options() -> None:
    """Give the partial indexes their PostgreSQL ``WHERE`` (idempotent; ``create_db_engine`` calls it
    for a PostgreSQL URL, before any migration or schema comparison sees the metadata)."""
    for index in replicas.indexes:
        where = _POSTGRESQL_WHERE.get(str(index.name))
        if where is not None:
            index.dialect_kwargs["postgresql_where"] = text(where)


Index("ix_replicas_representation_site", replicas.c.representation_id, replicas.c.site)
Index("ix_replicas_project_site_status", replicas.c.project_id, replicas.c.site, replicas.c.status)

# The running workers: who they are, where they run and when they last showed they were alive.
# Times in ``heartbeat_at`` come from the database's clock, so machines with skewed clocks agree.
# A lease whose owner is a dead process of this machine, or whose owner stopped beating, is
# reclaimed (``state/workers.py``); ``lease_expires_at`` stays the backstop.
workers = Table(
    "workers",
    metadata,
    Column("id", String(128), primary_key=True),  # the worker id, as in replicas.lease_owner
    Column("host", String(255), nullable=False),
    Column("boot_id", String(64), nullable=False),  # the host's boot (Linux); '' where unknown
    Column("pid", Integer, nullable=False),
    Column("site_id", NAME, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
)

representation_sites = Table(
    "representation_sites",
    metadata,
    Column(
        "representation_id",
        Integer,
        ForeignKey("representations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("site", NAME, primary_key=True),
    Column("priority", Integer, nullable=False),
    Column("paused", Boolean, nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("requested_by", String(200), nullable=False),
)

# Pauses above representation level: (project, site) where '*' means every project / every site.
pauses = Table(
    "pauses",
    metadata,
    Column("project", NAME, primary_key=True),
    Column("site", NAME, primary_key=True),
    Column("paused_at", Float, nullable=False),
    Column("paused_by", String(200), nullable=False),
)

# A representation references others (a workfile and the caches, textures and renders it loads).
links = Table(
    "links",
    metadata,
    Column(
        "representation_id",
        Integer,
        ForeignKey("representations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("linked_id", Integer, ForeignKey("representations.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(200), nullable=False),
)
# "used by": the representations that link to one
Index("ix_links_linked_id", links.c.linked_id)

# The storage identity of each site root (like git-annex's repository UUID): the id of the marker
# file sitesync wrote at the root on first use, by site and root location as a machine sees it. A
# root with a record here and no marker is not the storage it was (unmounted, replaced).
storage_markers = Table(
    "storage_markers",
    metadata,
    Column("site", NAME, primary_key=True),
    # xxh3-128 of the location: long locations overflow a PostgreSQL btree entry, their digest does not
    Column("location_key", String(32), primary_key=True),
    Column("location", String(4200), nullable=False),
    Column("marker_id", String(64), nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("recorded_by", String(200), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("project_id", Integer),
    Column("representation_id", Integer),
    Column("file_id", Integer),
    Column("site", NAME),
    Column("source_site", NAME),
    Column("bytes", BigInteger),
    Column("duration", Float),
    Column("actor", String(200), nullable=False),
    Column("message", Text),
)
Index("ix_events_at", events.c.at)
Index("ix_events_representation_id", events.c.representation_id, events.c.id)
Index("ix_events_kind", events.c.kind, events.c.id)
Index("ix_events_project_id", events.c.project_id, events.c.id)

# One row per (representation, site) that has replicas: the replicas aggregated, kept current by
# every state-store transaction that changes replicas (``state/summaries.py``). The Sync Queue
# lists, filters and sorts on it without aggregating millions of replicas per request.
site_states = Table(
    "site_states",
    metadata,
    Column(
        "representation_id",
        Integer,
        ForeignKey("representations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("site", NAME, primary_key=True),
    Column("project_id", Integer, nullable=False),
    # the representation on this site in one word (see sitesync.status_rollup): lost, removing, failed,
    # in_progress, no_source, paused, queued, present, partial
    Column("status", String(16), nullable=False),
    Column("files_present", Integer, nullable=False),
    Column("files_queued", Integer, nullable=False),
    Column("files_in_progress", Integer, nullable=False),
    Column("files_failed", Integer, nullable=False),
    Column("files_removing", Integer, nullable=False),
    Column("files_missing", Integer, nullable=False, server_default=text("0")),
    Column("files_no_source", Integer, nullable=False, server_default=text("0")),
    # the representation is paused on this site (whatever its status word)
    Column("paused", Boolean, nullable=False, server_default=text("false")),
    Column("bytes_present", BigInteger, nullable=False),
    Column("bytes_in_flight", BigInteger, nullable=False),
    Column("progress", Float, nullable=False),  # 0..1: verified plus in-flight bytes of the total
    Column("priority", Integer),
    Column("attempts", Integer, nullable=False),  # the most attempts of any file
    Column("last_error", Text),
    Column("updated_at", Float, nullable=False),  # the latest change of any replica
    # the representation's total size (copied, so the per-site counters can subtract an old row)
    Column("total_size", BigInteger, nullable=False, server_default=text("0")),
    sqlite_with_rowid=False,  # the list joins by primary key: one b-tree probe instead of two
)
# the Sync Queue reads one site's rows of a project by status, progress or change time in index order
Index(
    "ix_site_states_project_site_status",
    site_states.c.project_id,
    site_states.c.site,
    site_states.c.status,
    site_states.c.representation_id,
)
for _column in ("progress", "updated_at"):
    Index(
        f"ix_site_states_project_site_{_column}",
        site_states.c.project_id,
        site_states.c.site,
        site_states.c[_column],
        site_states.c.representation_id,
    )

# The project status summary: per (project, site) the ``site_states`` rows added up, kept current
# by the same refresh that writes ``site_states`` (as deltas: the new rows minus the old ones), so
# a summary reads a few rows instead of every representation's. A transaction adds its deltas to
# one of a few ``slot`` rows (chosen per database session), so concurrent workers on one site do
# not queue on a single hot row; readers sum the slots.
site_counts = Table(
    "site_counts",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("site", NAME, primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("representations", BigInteger, nullable=False),  # site_states rows
    Column("files_present", BigInteger, nullable=False),
    Column("files_queued", BigInteger, nullable=False),
    Column("files_in_progress", BigInteger, nullable=False),
    Column("files_failed", BigInteger, nullable=False),
    Column("files_removing", BigInteger, nullable=False),
    Column("files_missing", BigInteger, nullable=False),
    Column("files_no_source", BigInteger, nullable=False),
    Column("bytes_present", BigInteger, nullable=False),
    Column("total_size", BigInteger, nullable=False),  # the representations' sizes added up
)

# How many representations each project has (the Sync Queue's total when nothing is filtered), in
# slots like ``site_counts``; a publish that adds a representation adds one in its transaction.
project_counts = Table(
    "project_counts",
    metadata,
    Column("project_id", Integer, primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("representations", BigInteger, nullable=False),
)

# One row per representation that has replicas anywhere: its site rows combined. ``status`` is the
# one needing the most attention (lost, failed, no_source, removing, in_progress, queued, paused,
# partial, present),
# ``priority`` the highest. The Sync Queue's overall status and priority columns sort on it.
representation_states = Table(
    "representation_states",
    metadata,
    Column(
        "representation_id",
        Integer,
        ForeignKey("representations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("project_id", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_site", NAME, nullable=False),  # the site that status comes from (first by name)
    Column("priority", Integer),
    Column("paused", Boolean, nullable=False, server_default=text("false")),  # paused on any site
    Column("updated_at", Float, nullable=False),
)
for _column in ("status", "priority"):
    Index(
        f"ix_representation_states_project_id_{_column}",
        representation_states.c.project_id,
        representation_states.c[_column],
        representation_states.c.representation_id,
    )

# Indexes outside this metadata: PostgreSQL only, created by the migrations (the trigram index of
# the Sync Queue's text filter where the database allows the pg_trgm extension; the folder order
# with the id included, so a deep page of the default sort skips index entries only, never table
# rows: SQLite's indexes carry the rowid, which is the id, already).
POSTGRESQL_ONLY_INDEXES = ("ix_representations_text_trgm", "ix_representations_folder_order")

# Sorting the Sync Queue by a representation column reads a project's rows in index order.
for _column in ("product", "version", "name", "total_size", "file_count", "updated_at"):
    Index(
        f"ix_representations_project_id_{_column}_id",
        representations.c.project_id,
        representations.c[_column],
        representations.c.id,
    )

# ---------------------------------------------------------------------- workfiles (issue 15)
# Mutable artists' working files, a separate kind from published files. A workfile is (project,
# root, path relative to the project's folder on that root); its content changes over time as
# versions, each naming its parent (causality, never clocks). ``workfile_copies`` says which version
# each site holds at the normal path as far as sitesync knows (and carries the lease and retry
# state of the transfer bringing it there); ``workfile_conflicts`` the concurrent changes, both
# contents kept; ``workfile_conflict_copies`` where a conflict's other content was placed beside;
# ``workfile_locks`` Perforce-style advisory locks; ``workfile_scan_facts`` the last scan's stat
# facts per site (the stat cache that lets an unchanged tree cost one stat pass).
WORKFILE_KINDS = ("edit", "delete", "restore", "resolve", "conflict")
CONFLICT_KINDS = ("edit-edit", "delete-edit", "locked-edit")

workfiles = Table(
    "workfiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("root", NAME, nullable=False),
    Column("path", Text, nullable=False),
    Column("head_version_id", Integer),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
    Column("in_conflict", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("project_id", "root", "path"),
)

workfile_versions = Table(
    "workfile_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workfile_id", Integer, ForeignKey("workfiles.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),  # 1..N per workfile
    Column("parent_version_id", Integer),  # the version the making site had (None: made from nothing)
    Column("kind", String(16), nullable=False),  # WORKFILE_KINDS
    Column("hash", String(64)),  # hashing.DEFAULT_ALGORITHM hex digest; None for a deletion
    Column("size", BigInteger),
    Column("mtime", Float),
    Column("made_on_site", NAME, nullable=False),
    Column("made_by_user", String(200), nullable=False),
    Column("machine", String(200), nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("kept_at", Text),  # the copy in the versions area on the remote site (None: not kept)
    Column("kept_site", NAME),
    UniqueConstraint("workfile_id", "number"),
)
Index("ix_workfile_versions_kept", workfile_versions.c.kept_site, workfile_versions.c.recorded_at)

workfile_copies = Table(
    "workfile_copies",
    metadata,
    Column("workfile_id", Integer, ForeignKey("workfiles.id", ondelete="CASCADE"), primary_key=True),
    Column("site", NAME, primary_key=True),
    Column("version_id", Integer),  # what the site holds at the normal path (None: nothing)
    Column("updated_at", Float, nullable=False),
    Column("lease_owner", String(200)),
    Column("lease_expires_at", Float),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Float),
    Column("last_error", Text),
)

workfile_conflicts = Table(
    "workfile_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workfile_id", Integer, ForeignKey("workfiles.id", ondelete="CASCADE"), nullable=False),
    Column("site", NAME, nullable=False),  # where the conflicting change was made
    Column("local_version_id", Integer),  # that site's content (None: it deleted the file)
    Column("incoming_version_id", Integer),  # the head it collided with
    Column("conflict_path", Text),  # the local content's name beside the file on the other sites
    Column("incoming_path", Text),  # the incoming content's name beside the file on ``site``
    Column("kind", String(16), nullable=False),  # CONFLICT_KINDS
    Column("detected_at", Float, nullable=False),
    Column("resolved_at", Float),
    Column("resolution", String(16)),
    Column("resolved_by", String(200)),
    Column("message", Text),
)
Index("ix_workfile_conflicts_open", workfile_conflicts.c.workfile_id, workfile_conflicts.c.resolved_at)

workfile_conflict_copies = Table(
    "workfile_conflict_copies",
    metadata,
    Column("conflict_id", Integer, ForeignKey("workfile_conflicts.id", ondelete="CASCADE"), primary_key=True),
    Column("site", NAME, primary_key=True),
    Column("path", Text, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("placed_at", Float, nullable=False),
)

workfile_locks = Table(
    "workfile_locks",
    metadata,
    Column("workfile_id", Integer, ForeignKey("workfiles.id", ondelete="CASCADE"), primary_key=True),
    Column("site", NAME, nullable=False),
    Column("user", String(200), nullable=False),
    Column("machine", String(200), nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

workfile_scan_facts = Table(
    "workfile_scan_facts",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("site", NAME, primary_key=True),
    Column("root", NAME, primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("file_id", BigInteger, nullable=False),
    Column("hash", String(64)),
)
