"""State store, migration side: registering a representation taken over from another system
(OpenPype, AYON) with each file's state per site, idempotently.

A new representation is inserted with its files and, per site, its priority, pause and each
file's replica (present, queued, failed with attempts and error). One already in the catalog with
the same file paths is merged: sites and files it lacks are added, a file recorded present by the
other system is marked present where sitesync still waits for it; nothing is ever downgraded and
sitesync's own priorities and pauses win. One with different files is left alone and reported.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.base import chunked, event, insert_many
from sitesync.state.catalog import _key_is
from sitesync.state.publish import PublishMixin
from sitesync.state.records import FileFacts, RepresentationKey
from sitesync.state.summaries import refresh_representations


@dataclass(frozen=True)
class ReplicaImport:
    status: str  # present, queued or failed
    attempts: int = 0
    last_error: str | None = None
    last_failed_at: float | None = None
    present_since: float | None = None


@dataclass(frozen=True)
class SiteImport:
    priority: int
    paused: bool
    replicas: Mapping[str, ReplicaImport]  # catalog path -> state; files not named are queued


@dataclass(frozen=True)
class RepresentationImport:
    """One representation to register: its key, files (with hashes) and state per site."""

    key: RepresentationKey
    files: Sequence[FileFacts]
    sites: Mapping[str, SiteImport]
    message: str  # for the history: where it came from


@dataclass
class ImportOutcome:
    representation_id: int | None
    created: bool = False
    changed: bool = False
    conflict: str | None = None
    replicas: dict[str, int] = field(default_factory=dict)  # status -> replicas written


class ImportsMixin(PublishMixin):
    def existing_files(self, project_id: int, key: RepresentationKey) -> dict[str, tuple[int, str, str]] | None:
        """The files (path -> size, hash algorithm, hash) of the representation with this key, or None."""
        f = s.files
        q = (
            sa.select(f.c.path, f.c.size, f.c.hash_algo, f.c.hash)
            .select_from(s.representations.outerjoin(f, f.c.representation_id == s.representations.c.id))
            .where(*_key_is(project_id, key))
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        if not rows:
            return None
        return {row.path: (row.size, row.hash_algo, row.hash) for row in rows if row.path is not None}

    def import_representations(
        self, project_id: int, items: Sequence[RepresentationImport], actor: str, now: float | None = None
    ) -> list[ImportOutcome]:
        """Register a batch of representations in one transaction; one outcome per item."""
        now = time.time() if now is None else now
        with self._write() as conn:
            outcomes = [self._import_one(conn, project_id, item, actor, now) for item in items]
            changed = [o.representation_id for o in outcomes if o.changed and o.representation_id is not None]
            if changed:
                refresh_representations(conn, changed)
                self._events(
                    conn,
                    [
                        event(
                            "import",
                            actor,
                            project_id=project_id,
                            representation_id=o.representation_id,
                            message=f"{item.key.label}: {item.message}",
                        )
                        for item, o in zip(items, outcomes, strict=True)
                        if o.changed
                    ],
                )
        return outcomes

    def _import_one(
        self, conn: Connection, project_id: int, item: RepresentationImport, actor: str, now: float
    ) -> ImportOutcome:
        f = s.files
        existing = self._representation_id(conn, project_id, item.key)
        if existing is None:
            rep_id = self._insert_representation(conn, project_id, item.key, item.files, actor, now)
            outcome = ImportOutcome(rep_id, created=True, changed=True)
        else:
            rep_id = existing
            self._lock_replicas(conn, rep_id)
            outcome = ImportOutcome(rep_id)
        ids = {
            row.path: row.id for row in conn.execute(sa.select(f.c.path, f.c.id).where(f.c.representation_id == rep_id))
        }
        if set(ids) != {x.path for x in item.files}:
            return ImportOutcome(
                rep_id,
                conflict=f"already in the catalog as representation {rep_id} with other files "
                f"({len(ids)} there, {len(item.files)} here); left as it is",
            )
        for site, wanted in item.sites.items():
            self._import_site(conn, rep_id, project_id, site, wanted, ids, actor, now, outcome)
        return outcome

    def _import_site(
        self,
        conn: Connection,
        rep_id: int,
        project_id: int,
        site: str,
        wanted: SiteImport,
        ids: Mapping[str, int],
        actor: str,
        now: float,
        outcome: ImportOutcome,
    ) -> None:
        t, r = s.representation_sites, s.replicas
        had_site = conn.execute(
            sa.select(t.c.priority, t.c.paused).where(t.c.representation_id == rep_id, t.c.site == site)
        ).first()
        if had_site is None:
            priority, paused = self._ensure_rep_site(conn, rep_id, site, actor, now, wanted.priority)
            if wanted.paused:
                conn.execute(t.update().where(t.c.representation_id == rep_id, t.c.site == site).values(paused=True))
                paused = True
            outcome.changed = True
        else:  # sitesync's own priority and pause stay
            priority, paused = int(had_site.priority), bool(had_site.paused)
        current: dict[int, str] = {}
        for part in chunked([] if outcome.created else list(ids.values())):
            current.update(
                conn.execute(sa.select(r.c.file_id, r.c.status).where(r.c.site == site, r.c.file_id.in_(part))).all()
            )
        rows: list[dict[str, Any]] = []
        upgrade: list[tuple[int, float | None]] = []
        for path, file_id in ids.items():
            state = wanted.replicas.get(path, ReplicaImport(s.QUEUED))
            have = current.get(file_id)
            if have is None:
                rows.append(_replica_row(file_id, rep_id, project_id, site, state, priority, paused, now))
            elif state.status == s.PRESENT and have in (s.QUEUED, s.FAILED):
                upgrade.append((file_id, state.present_since))
        if rows:
            insert_many(conn, r, rows)
            for row in rows:
                outcome.replicas[row["status"]] = outcome.replicas.get(row["status"], 0) + 1
            outcome.changed = True
        for file_id, since in upgrade:
            conn.execute(
                r.update()
                .where(r.c.file_id == file_id, r.c.site == site, r.c.status.in_((s.QUEUED, s.FAILED)))
                .values(**{**self._present_values(now), "present_since": since or now})
            )
            outcome.replicas[s.PRESENT] = outcome.replicas.get(s.PRESENT, 0) + 1
            outcome.changed = True


def _replica_row(
    file_id: int,
    rep_id: int,
    project_id: int,
    site: str,
    state: ReplicaImport,
    priority: int,
    paused: bool,
    now: float,
) -> dict[str, Any]:
    present = state.status == s.PRESENT
    return {
        "file_id": file_id,
        "representation_id": rep_id,
        "project_id": project_id,
        "site": site,
        "status": state.status,
        "priority": priority,
        "paused": paused,
        "attempts": 0 if present else state.attempts,
        "next_attempt_at": now,
        "last_error": None if present else state.last_error,
        "last_failed_at": None if present else state.last_failed_at,
        "present_since": (state.present_since or now) if present else None,
        "bytes_done": 0,
        "updated_at": now,
    }


__all__ = ["ImportOutcome", "ImportsMixin", "ReplicaImport", "RepresentationImport", "SiteImport"]
