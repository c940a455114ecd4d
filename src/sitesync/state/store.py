"""The state store: the only code that writes SQL.

``StateStore`` opens the database and offers one method per thing the rest of sitesync needs. The
methods are grouped by concern in mixins (``catalog.py``: representation and file lookups and
the helpers the others share, ``publish.py``: publishes, ``requests.py``: requests for a site,
re-sync, priority and representation pause, ``queue.py``:
the worker's claims, leases and outcomes, ``removals.py``: the guarded removal's records,
``physical.py``: storage markers, copies found lost, files without a source, ``workers.py``:
running workers and their heartbeats, ``queries.py``: read models for the faces, ``links.py``:
links between representations, ``workflows.py``: validate/fsck records and preferred-content
requests, ``listing.py``: the Sync Queue list over the summaries ``summaries.py`` keeps current,
``plan.py``: the read-only queries of the dry-run plan, ``imports.py``: representations taken over
from OpenPype or AYON, ``overview.py``: the dashboard's overview and Sites view counts, ``workfiles.py`` and
``workfiles_ops.py``: workfiles, their versions, conflicts and locks) over
``base.py`` (connections, transactions; ``dberrors.py``: database errors become sitesync errors,
and busy transactions are run again). This file holds settings documents, projects, pauses and the
event history.

Transactions are short. Writes on SQLite start with ``BEGIN IMMEDIATE`` (one writer at a time,
no lock-upgrade deadlocks); on PostgreSQL rows that must not change under a decision are locked
with ``FOR UPDATE`` and the work queue is claimed with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.errors import ConflictError, NotFoundError
from sitesync.state import schema as s
from sitesync.state.base import event
from sitesync.state.catalog import CatalogMixin
from sitesync.state.dberrors import retry_transactions
from sitesync.state.imports import ImportsMixin
from sitesync.state.links import LinksMixin
from sitesync.state.listing import ListingMixin, event_filters
from sitesync.state.overview import OverviewMixin
from sitesync.state.plan import PlanMixin
from sitesync.state.publish import PublishMixin
from sitesync.state.queries import QueriesMixin
from sitesync.state.queue import QueueMixin
from sitesync.state.records import EventRow, ProjectRow
from sitesync.state.removals import RemovalsMixin
from sitesync.state.requests import RequestsMixin
from sitesync.state.schema import ALL
from sitesync.state.workers import WorkersMixin
from sitesync.state.workfiles_ops import WorkfileOpsMixin
from sitesync.state.workflows import WorkflowsMixin


@retry_transactions
class StateStore(
    WorkfileOpsMixin,
    ImportsMixin,
    WorkflowsMixin,
    LinksMixin,
    RemovalsMixin,
    PublishMixin,
    RequestsMixin,
    CatalogMixin,
    QueueMixin,
    WorkersMixin,
    QueriesMixin,
    ListingMixin,
    PlanMixin,
    OverviewMixin,
):
    # ------------------------------------------------------------------ event history

    def events(
        self,
        *,
        project_id: int | None = None,
        representation_id: int | None = None,
        kinds: Sequence[str] | None = None,
        site: str | None = None,
        after_id: int | None = None,
        limit: int = 100,
        newest_first: bool = True,
    ) -> list[EventRow]:
        e = s.events
        q = sa.select(e).where(*event_filters(project_id, representation_id, kinds, site))
        if after_id is not None:
            q = q.where(e.c.id > after_id)
        q = q.order_by(e.c.id.desc() if newest_first else e.c.id).limit(limit)
        with self._read() as conn:
            return [EventRow(**row._mapping) for row in conn.execute(q)]

    # ------------------------------------------------------------------ settings documents

    def settings_version(self) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(s.settings.c.version), 0))).scalar_one())

    def settings_documents(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """(version, {scope: document}) of every stored settings document."""
        with self._read() as conn:
            rows = conn.execute(sa.select(s.settings.c.scope, s.settings.c.document, s.settings.c.version)).all()
        version = max((r.version for r in rows), default=0)
        return version, {r.scope: json.loads(r.document) for r in rows}

    def put_settings(self, documents: dict[str, dict[str, Any]], actor: str) -> int:
        """Write whole settings documents (scope -> document) in one transaction; returns the new version."""
        with self._write() as conn:
            return self._put_settings(conn, documents, actor)

    def _put_settings(self, conn: Connection, documents: dict[str, dict[str, Any]], actor: str) -> int:
        t = s.settings
        version = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(t.c.version), 0))).scalar_one()) + 1
        now = time.time()
        for scope, doc in documents.items():
            values = {
                "document": json.dumps(doc, sort_keys=True),
                "version": version,
                "updated_at": now,
                "updated_by": actor,
            }
            updated = conn.execute(t.update().where(t.c.scope == scope).values(**values)).rowcount
            if not updated:
                conn.execute(t.insert().values(scope=scope, **values))
        self._events(conn, [event("settings", actor, message=", ".join(sorted(documents)))])
        return version

    # ------------------------------------------------------------------ projects

    def create_project(self, name: str, document: dict[str, Any], actor: str) -> ProjectRow:
        with self._write() as conn:
            exists = conn.execute(sa.select(s.projects.c.id).where(s.projects.c.name == name)).first()
            if exists:
                raise ConflictError(f"project {name!r} already exists; use `sitesync settings set --project {name}`")
            now = time.time()
            pid = conn.execute(
                s.projects.insert().values(name=name, created_at=now).returning(s.projects.c.id)
            ).scalar_one()
            self._put_settings(conn, {f"project:{name}": document}, actor)
            self._events(conn, [event("project", actor, project_id=pid, message=f"created {name}")])
            return ProjectRow(pid, name, now)

    def projects(self) -> list[ProjectRow]:
        with self._read() as conn:
            rows = conn.execute(sa.select(s.projects).order_by(s.projects.c.name)).all()
        return [ProjectRow(r.id, r.name, r.created_at) for r in rows]

    def project(self, name: str) -> ProjectRow:
        with self._read() as conn:
            row = conn.execute(sa.select(s.projects).where(s.projects.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"unknown project {name!r}; see `sitesync project list`")
        return ProjectRow(row.id, row.name, row.created_at)

    def project_by_id(self, project_id: int) -> ProjectRow:
        with self._read() as conn:
            row = conn.execute(sa.select(s.projects).where(s.projects.c.id == project_id)).first()
        if row is None:
            raise NotFoundError(f"unknown project id {project_id}")
        return ProjectRow(row.id, row.name, row.created_at)

    # ------------------------------------------------------------------ pauses above representation level

    def pauses(self) -> set[tuple[str, str]]:
        """Every (project, site) pause; '*' stands for all projects or all sites."""
        with self._read() as conn:
            return {(r.project, r.site) for r in conn.execute(sa.select(s.pauses.c.project, s.pauses.c.site))}

    def set_pause(self, project: str, site: str, paused: bool, actor: str) -> bool:
        """Pause or resume a (project, site) scope. Returns whether anything changed."""
        t = s.pauses
        with self._write() as conn:
            where = sa.and_(t.c.project == project, t.c.site == site)
            exists = conn.execute(sa.select(t.c.project).where(where)).first() is not None
            if paused == exists:
                return False
            if paused:
                conn.execute(t.insert().values(project=project, site=site, paused_at=time.time(), paused_by=actor))
            else:
                conn.execute(t.delete().where(where))
            verb = "paused" if paused else "resumed"
            row_event = event("pause" if paused else "resume", actor)
            if project.startswith("@"):  # a machine's workers (WORKER_PAUSE): site is its site id
                row_event.update(site=site, message=f"{verb} the workers of machine {site}")
            else:
                if project != ALL:
                    row = conn.execute(sa.select(s.projects.c.id).where(s.projects.c.name == project)).first()
                    row_event["project_id"] = row.id if row is not None else None
                if site != ALL:
                    row_event["site"] = site
                what = (
                    "all syncing, every project and site"
                    if project == ALL and site == ALL
                    else f"project {project} on every site"
                    if site == ALL
                    else f"site {site} in every project"
                    if project == ALL
                    else f"project {project} on site {site}"
                )
                row_event["message"] = f"{verb} {what}"
            self._events(conn, [row_event])
            return True
