"""State store, catalog side: looking up representations and files, the connection-level helpers
that publishing (``publish.py``), requests (``requests.py``), imports and workflows share (queueing
the replicas a representation lacks on a site, recording copies present), and a site's records."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import xxhash
from sqlalchemy.engine import Connection

from sitesync.errors import NotFoundError
from sitesync.state import schema as s
from sitesync.state.base import chunked, event, ids_in, ids_param
from sitesync.state.database import upsert_insert
from sitesync.state.physical import PhysicalMixin
from sitesync.state.records import (
    FileRow,
    RepresentationKey,
    RepresentationRow,
    version_label,
)
from sitesync.state.summaries import refresh_pairs

_WANTED = s.NOT_HELD


def path_key(path: str) -> str:
    return xxhash.xxh3_128_hexdigest(path.encode("utf-8"))


def _rep_select() -> sa.Select[Any]:
    r = s.representations
    return sa.select(r, s.projects.c.name.label("project")).join(s.projects, s.projects.c.id == r.c.project_id)


def _key_is(project_id: int, key: RepresentationKey) -> list[sa.ColumnElement[bool]]:
    """The representation with this key in the project (the table's unique key)."""
    r = s.representations
    return [
        r.c.project_id == project_id,
        r.c.folder == key.folder,
        r.c.product == key.product,
        r.c.version == key.version,
        r.c.name == key.name,
    ]


def _rep_row(row: Any) -> RepresentationRow:
    m = row._mapping
    return RepresentationRow(
        id=m["id"],
        project_id=m["project_id"],
        project=m["project"],
        folder=m["folder"],
        product=m["product"],
        version=m["version"],
        name=m["name"],
        file_count=m["file_count"],
        total_size=m["total_size"],
        content_rev=m["content_rev"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        published_by=m["published_by"],
    )


# the columns an ``INSERT ... SELECT`` of new replica rows fills, in the order its SELECT lists them
REPLICA_INSERT_COLUMNS = [
    "file_id",
    "representation_id",
    "project_id",
    "site",
    "status",
    "priority",
    "paused",
    "attempts",
    "next_attempt_at",
    "bytes_done",
    "updated_at",
    "present_since",
    "seen_size",
    "seen_hash",
]


def _tagged_hash(f: Any) -> sa.ColumnElement[str]:
    return f.c.hash_algo + ":" + f.c.hash


def seen_values() -> dict[str, Any]:
    """A replica UPDATE's values recording that its location holds its file's content (as
    verified now): size and hash from the file; the storage fingerprint is recorded separately."""
    f, r = s.files, s.replicas
    return {
        "seen_size": sa.select(f.c.size).where(f.c.id == r.c.file_id).scalar_subquery(),
        "seen_hash": sa.select(_tagged_hash(f)).where(f.c.id == r.c.file_id).scalar_subquery(),
        "seen_mtime": None,
        "provider_ref": None,
    }


@functools.cache
def _queue_missing_statement(dialect: str, with_ids: bool) -> sa.Executable:
    """INSERT ... SELECT of the replicas a representation lacks on a site, built once (building it
    per call cost more than running it for a representation of a hundred files)."""
    f, r = s.files, s.replicas
    other = r.alias("existing")
    cond = [
        f.c.representation_id == sa.bindparam("b_rep"),
        ~sa.exists().where(other.c.file_id == f.c.id, other.c.site == sa.bindparam("b_site")),
    ]
    if with_ids:
        cond.append(ids_in(f.c.id, dialect))
    sel = sa.select(
        f.c.id,
        sa.bindparam("b_rep", type_=sa.Integer),
        sa.bindparam("b_project", type_=sa.Integer),
        sa.bindparam("b_site", type_=sa.String),
        sa.bindparam("b_status", type_=sa.String),
        sa.bindparam("b_priority", type_=sa.Integer),
        sa.bindparam("b_paused", type_=sa.Boolean),
        sa.literal(0),
        sa.bindparam("b_now", type_=sa.Float),
        sa.literal(0),
        sa.bindparam("b_now", type_=sa.Float),
        sa.bindparam("b_present", type_=sa.Float),
        # a copy recorded present holds the file's content: that is what was verified there
        sa.case((sa.bindparam("b_status", type_=sa.String) == s.PRESENT, f.c.size), else_=sa.null()),
        sa.case((sa.bindparam("b_status", type_=sa.String) == s.PRESENT, _tagged_hash(f)), else_=sa.null()),
    ).where(*cond)
    return r.insert().from_select(REPLICA_INSERT_COLUMNS, sel).returning(r.c.id)


class CatalogMixin(PhysicalMixin):
    # ------------------------------------------------------------------ lookups

    def representation(self, rep_id: int) -> RepresentationRow:
        with self._read() as conn:
            row = conn.execute(_rep_select().where(s.representations.c.id == rep_id)).first()
        if row is None:
            raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
        return _rep_row(row)

    def representations_by_ids(self, rep_ids: Sequence[int]) -> dict[int, RepresentationRow]:
        out: dict[int, RepresentationRow] = {}
        with self._read() as conn:
            for part in chunked(list(rep_ids)):
                for row in conn.execute(_rep_select().where(s.representations.c.id.in_(part))):
                    out[row.id] = _rep_row(row)
        return out

    def find_representation(self, project_id: int, key: RepresentationKey) -> RepresentationRow | None:
        with self._read() as conn:
            row = conn.execute(_rep_select().where(*_key_is(project_id, key))).first()
        return _rep_row(row) if row else None

    def files_of(self, rep_id: int) -> list[FileRow]:
        f = s.files
        with self._read() as conn:
            rows = conn.execute(sa.select(f).where(f.c.representation_id == rep_id).order_by(f.c.path)).all()
        return [FileRow(r.id, r.representation_id, r.path, r.size, r.hash_algo, r.hash) for r in rows]

    def files_by_path(self, path: str) -> list[FileRow]:
        f = s.files
        with self._read() as conn:
            rows = conn.execute(sa.select(f).where(f.c.path_key == path_key(path), f.c.path == path)).all()
        return [FileRow(r.id, r.representation_id, r.path, r.size, r.hash_algo, r.hash) for r in rows]

    def representation_sites(self, rep_id: int) -> dict[str, dict[str, Any]]:
        t = s.representation_sites
        with self._read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.representation_id == rep_id)).all()
        return {r.site: dict(r._mapping) for r in rows}

    # ------------------------------------------------------------------ helpers on a connection
    @staticmethod
    def _require_rep(conn: Connection, rep_id: int) -> Any:
        rep = conn.execute(
            sa.select(s.representations.c.id, s.representations.c.project_id).where(s.representations.c.id == rep_id)
        ).first()
        if rep is None:
            raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
        return rep

    def _lock_replicas(self, conn: Connection, rep_id: int) -> None:
        """On PostgreSQL, lock the representation's replicas in id order before changing them.

        Every writer that changes several replicas takes its row locks in ascending id order
        (workers lock their batch the same way in ``record_outcomes``), so two writers can wait
        for each other but never deadlock. SQLite has one writer at a time and needs nothing."""
        if self.is_postgres:
            r = s.replicas
            conn.execute(sa.select(r.c.id).where(r.c.representation_id == rep_id).order_by(r.c.id).with_for_update())

    @staticmethod
    def _ensure_rep_site(
        conn: Connection, rep_id: int, site: str, actor: str, now: float, priority: int | None
    ) -> tuple[int, bool]:
        """Make sure the representation is wanted on ``site``; return its (priority, paused)."""
        t = s.representation_sites
        where = sa.and_(t.c.representation_id == rep_id, t.c.site == site)
        row = conn.execute(sa.select(t.c.priority, t.c.paused).where(where)).first()
        if row is None:
            prio = priority if priority is not None else s.DEFAULT_PRIORITY
            # a representation paused everywhere is paused on a site requested after the pause too
            held = bool(
                conn.execute(
                    sa.select(s.representations.c.paused).where(s.representations.c.id == rep_id)
                ).scalar_one_or_none()
            )
            insert = upsert_insert(conn.dialect.name, t)
            # two requests for the same site at once: the second finds the first's row
            inserted = conn.execute(
                insert.values(
                    representation_id=rep_id,
                    site=site,
                    priority=prio,
                    paused=held,
                    requested_at=now,
                    requested_by=actor,
                )
                .on_conflict_do_nothing()
                .returning(t.c.site)
            ).first()
            if inserted is not None:
                return prio, held
            row = conn.execute(sa.select(t.c.priority, t.c.paused).where(where)).one()
        if priority is not None and priority != row.priority:
            conn.execute(t.update().where(where).values(priority=priority))
            conn.execute(
                s.replicas.update()
                .where(s.replicas.c.representation_id == rep_id, s.replicas.c.site == site)
                .values(priority=priority)
            )
            return priority, bool(row.paused)
        return int(row.priority), bool(row.paused)

    @staticmethod
    def _queue_missing(
        conn: Connection,
        rep_id: int,
        project_id: int,
        site: str,
        priority: int,
        paused: bool,
        now: float,
        file_ids: Sequence[int] | None = None,
        status: str = s.QUEUED,
    ) -> int:
        """Insert a replica (queued, or ``status``) on ``site`` for every file of the representation
        that has none there."""
        dialect = conn.dialect.name
        params: dict[str, Any] = {
            "b_rep": rep_id,
            "b_project": project_id,
            "b_site": site,
            "b_status": status,
            "b_priority": priority,
            "b_paused": paused,
            "b_now": now,
            "b_present": now if status == s.PRESENT else None,
        }
        if file_ids is not None:
            params["b_ids"] = ids_param(file_ids, dialect)
        # RETURNING: rowcount of INSERT ... SELECT is not reported by every driver
        return len(conn.execute(_queue_missing_statement(dialect, file_ids is not None), params).all())

    @staticmethod
    def _requeue_values(now: float) -> dict[str, Any]:
        return {
            "status": s.QUEUED,
            "attempts": 0,
            "next_attempt_at": now,
            "last_error": None,
            "last_failed_at": None,
            "present_since": None,
            "bytes_done": 0,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }

    @staticmethod
    def _present_values(now: float, source: str | None = None) -> dict[str, Any]:
        return {
            "status": s.PRESENT,
            "attempts": 0,
            "last_error": None,
            "last_failed_at": None,
            "present_since": now,
            "bytes_done": 0,
            "lease_owner": None,
            "lease_expires_at": None,
            "source_site": source,
            "updated_at": now,
            **seen_values(),
        }

    def _mark_present(
        self,
        conn: Connection,
        rep_id: int,
        project_id: int,
        site: str,
        file_ids: Sequence[int],
        now: float,
        priority: int,
        paused: bool,
    ) -> None:
        r = s.replicas
        ids = list(file_ids)
        if not ids:
            return
        dialect = conn.dialect.name
        # every record there, a pending removal's too: the publish put this content there now. The
        # ids go as one parameter: an IN list of thousands cost more to build than to run
        conn.execute(
            r.update().where(r.c.site == site, ids_in(r.c.file_id, dialect)).values(**self._present_values(now)),
            {"b_ids": ids_param(ids, dialect)},
        )
        self._queue_missing(conn, rep_id, project_id, site, priority, paused, now, ids, status=s.PRESENT)

    @classmethod
    def _adopt_alternatives(
        cls, conn: Connection, rep_id: int, site: str, alternatives: Sequence[str], now: float
    ) -> int:
        """Files wanted on ``site`` that one of its alternatives (the same storage) holds are
        present there already: record them so, never copy them."""
        if not alternatives:
            return 0
        r = s.replicas
        alt = r.alias("alt")
        holder = sa.and_(alt.c.file_id == r.c.file_id, alt.c.site.in_(list(alternatives)), alt.c.status == s.PRESENT)
        values = cls._present_values(now)
        values["source_site"] = sa.select(alt.c.site).where(holder).order_by(alt.c.site).limit(1).scalar_subquery()
        return (
            conn.execute(
                r.update()
                .where(
                    r.c.representation_id == rep_id,
                    r.c.site == site,
                    r.c.status.in_(_WANTED),
                    sa.exists().where(holder),
                )
                .values(**values)
            ).rowcount
            or 0
        )

    # ------------------------------------------------------------------ sites

    def forget_site(self, site: str, actor: str) -> int:
        """Drop every record of ``site`` (the site definition is being removed)."""
        with self._write() as conn:
            held = conn.execute(
                sa.select(s.site_states.c.representation_id).where(s.site_states.c.site == site)
            ).scalars()
            pairs = [(rep_id, site) for rep_id in held]
            n = conn.execute(s.replicas.delete().where(s.replicas.c.site == site)).rowcount or 0
            conn.execute(s.representation_sites.delete().where(s.representation_sites.c.site == site))
            conn.execute(s.pauses.delete().where(s.pauses.c.site == site))
            refresh_pairs(conn, pairs)
            self._events(conn, [event("site_forgotten", actor, site=site, message=f"{n} records")])
        return n

    def site_record_count(self, site: str) -> dict[str, int]:
        r = s.replicas
        with self._read() as conn:
            return {
                row.status: row.n
                for row in conn.execute(
                    sa.select(r.c.status, sa.func.count().label("n")).where(r.c.site == site).group_by(r.c.status)
                )
            }


__all__ = ["CatalogMixin", "path_key", "seen_values", "version_label"]
