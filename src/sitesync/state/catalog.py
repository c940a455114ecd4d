"""State store, catalog side: publishes, requests for a site (download/upload), reset, priority,
representation pause, and the guarded removal of a site's copies."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import xxhash
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from sitesync.errors import NotFoundError
from sitesync.state import schema as s
from sitesync.state.base import chunked, ids_in, ids_param, insert_many
from sitesync.state.physical import PhysicalMixin
from sitesync.state.records import (
    FileFacts,
    FileRow,
    PublishResult,
    RepresentationKey,
    RepresentationRow,
    version_label,
)
from sitesync.state.summaries import count_new_representations, refresh_pairs, refresh_representations

DEFAULT_PRIORITY = 50
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


# a republish's changed files: (id, size, hash algorithm, hash) as arrays (PostgreSQL) or JSON rows (SQLite)
_FILE_CONTENT_PG = sa.text(
    "UPDATE files AS f SET size = v.size, hash_algo = v.algo, hash = v.hash, updated_at = :now FROM unnest("
    "CAST(:ids AS integer[]), CAST(:sizes AS bigint[]), CAST(:algos AS varchar[]), CAST(:hashes AS varchar[])"
    ") AS v(id, size, algo, hash) WHERE f.id = v.id"
)
_FILE_CONTENT_SQLITE = sa.text(
    "UPDATE files SET size = json_extract(v.value, '$[1]'), hash_algo = json_extract(v.value, '$[2]'), "
    "hash = json_extract(v.value, '$[3]'), updated_at = :now "
    "FROM json_each(:rows) AS v WHERE files.id = json_extract(v.value, '$[0]')"
)


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
            prio = priority if priority is not None else DEFAULT_PRIORITY
            # a representation paused everywhere is paused on a site requested after the pause too
            held = bool(
                conn.execute(
                    sa.select(s.representations.c.paused).where(s.representations.c.id == rep_id)
                ).scalar_one_or_none()
            )
            insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(t)
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

    # ------------------------------------------------------------------ publish

    def publish(
        self,
        project_id: int,
        key: RepresentationKey,
        files: Sequence[FileFacts],
        present_site: str,
        queue_sites: Sequence[str],
        actor: str,
        priority: int | None = None,
        also_present: Sequence[str] = (),
    ) -> PublishResult:
        """Register a representation and its files: present on ``present_site`` and on its
        alternatives ``also_present`` (the same storage reached another way), queued on each of
        ``queue_sites``. Publishing an existing representation again with changed content updates
        the files and queues every site that held the old content."""
        now = time.time()
        r, f, rep_t = s.replicas, s.files, s.representations
        alts = [a for a in dict.fromkeys(also_present) if a != present_site]
        same_storage = [present_site, *alts]
        queue_sites = [q for q in dict.fromkeys(queue_sites) if q not in same_storage]
        with self._write() as conn:
            existing = self._representation_id(conn, project_id, key)
            total = sum(x.size for x in files)
            if existing is None:
                rep_id = self._insert_representation(conn, project_id, key, files, actor, now)
                prio, paused = self._ensure_rep_site(conn, rep_id, present_site, actor, now, priority)
                # a new representation's files have no replicas yet: insert them present directly, on
                # the publishing site and on its alternatives (the same storage)
                for site in same_storage:
                    self._queue_missing(conn, rep_id, project_id, site, prio, paused, now, status=s.PRESENT)
                self._publish_fingerprints(conn, rep_id, same_storage, files)
                for site in queue_sites:
                    prio, paused = self._ensure_rep_site(conn, rep_id, site, actor, now, priority)
                    self._queue_missing(conn, rep_id, project_id, site, prio, paused, now)
                refresh_representations(conn, [rep_id])
                self._events(
                    conn,
                    [
                        {
                            "kind": "publish",
                            "actor": actor,
                            "project_id": project_id,
                            "representation_id": rep_id,
                            "site": present_site,
                            "bytes": total,
                            "message": f"{key.label}: {len(files)} files; queued on {', '.join(queue_sites) or '-'}",
                        }
                    ],
                )
                return PublishResult(rep_id, True, len(files), (), tuple(queue_sites))

            rep_id = existing
            self._lock_replicas(conn, rep_id)
            old = {
                row.path: row
                for row in conn.execute(
                    sa.select(f.c.id, f.c.path, f.c.size, f.c.hash, f.c.hash_algo).where(
                        f.c.representation_id == rep_id
                    )
                )
            }
            new = {x.path: x for x in files}
            # (file id, its new facts) of every file whose content changed
            changed_facts = [
                (old[p].id, x)
                for p, x in new.items()
                if p in old and (old[p].size != x.size or old[p].hash != x.hash or old[p].hash_algo != x.hash_algo)
            ]
            changed = [file_id for file_id, _ in changed_facts]
            added = [x for p, x in new.items() if p not in old]
            dropped = [row.id for p, row in old.items() if p not in new]

            requeued: set[str] = set()
            if changed:
                dialect = conn.dialect.name
                changed_ids = {"b_ids": ids_param(changed, dialect)}
                held = (
                    conn.execute(
                        sa.select(r.c.site)
                        .where(ids_in(r.c.file_id, dialect), r.c.status == s.PRESENT, r.c.site.notin_(same_storage))
                        .distinct(),
                        changed_ids,
                    )
                    .scalars()
                    .all()
                )
                requeued.update(held)
                conn.execute(
                    r.update()
                    .where(ids_in(r.c.file_id, dialect), r.c.site.notin_(same_storage), r.c.status != s.REMOVING)
                    .values(**self._requeue_values(now)),
                    changed_ids,
                )
                self._update_file_content(conn, changed_facts, now)
            added_ids = self._insert_files(conn, rep_id, added, now) if added else []
            if dropped:
                for part in chunked(dropped):
                    conn.execute(f.delete().where(f.c.id.in_(part)))
            prio, paused = self._ensure_rep_site(conn, rep_id, present_site, actor, now, priority)
            # the publishing site holds every file of the new content
            current_ids = [old[p].id for p in new if p in old] + added_ids
            for site in same_storage:
                self._mark_present(conn, rep_id, project_id, site, current_ids, now, prio, paused)
            self._publish_fingerprints(conn, rep_id, same_storage, files)
            wanted_sites = set(queue_sites) | requeued
            wanted_sites |= set(
                conn.execute(
                    sa.select(s.representation_sites.c.site).where(s.representation_sites.c.representation_id == rep_id)
                ).scalars()
            )
            wanted_sites.difference_update(same_storage)
            for site in sorted(wanted_sites):
                prio, paused = self._ensure_rep_site(conn, rep_id, site, actor, now, priority)
                self._queue_missing(conn, rep_id, project_id, site, prio, paused, now)
            self._settle_sources(conn, None, now, rep_ids=[rep_id])
            content_changed = bool(changed or added or dropped)
            conn.execute(
                rep_t.update()
                .where(rep_t.c.id == rep_id)
                .values(
                    file_count=len(files),
                    total_size=total,
                    content_rev=rep_t.c.content_rev + (1 if content_changed else 0),
                    updated_at=now,
                )
            )
            refresh_representations(conn, [rep_id])
            message = (
                f"{key.label}: republished, {len(changed)} changed, {len(added)} added, {len(dropped)} dropped"
                + (f"; re-queued on {', '.join(sorted(requeued))}" if requeued else "")
                if content_changed
                else f"{key.label}: republished with identical content"
            )
            self._events(
                conn,
                [
                    {
                        "kind": "publish",
                        "actor": actor,
                        "project_id": project_id,
                        "representation_id": rep_id,
                        "site": present_site,
                        "bytes": total,
                        "message": message,
                    }
                ],
            )
            return PublishResult(
                rep_id, False, len(changed) + len(added), tuple(sorted(requeued)), tuple(sorted(wanted_sites))
            )

    @staticmethod
    def _update_file_content(conn: Connection, changed: Sequence[tuple[int, FileFacts]], now: float) -> None:
        """The new size and hash of republished files: one statement for all of them (a statement
        per file, or SQLAlchemy's executemany, was most of the time of a big republish)."""
        if conn.dialect.name == "postgresql":
            conn.execute(
                _FILE_CONTENT_PG,
                {
                    "ids": [file_id for file_id, _ in changed],
                    "sizes": [x.size for _, x in changed],
                    "algos": [x.hash_algo for _, x in changed],
                    "hashes": [x.hash for _, x in changed],
                    "now": now,
                },
            )
        else:
            rows = [[file_id, x.size, x.hash_algo, x.hash] for file_id, x in changed]
            conn.execute(_FILE_CONTENT_SQLITE, {"rows": json.dumps(rows), "now": now})

    def _publish_fingerprints(
        self, conn: Connection, rep_id: int, sites: Sequence[str], files: Sequence[FileFacts]
    ) -> None:
        """The storage fingerprints publish took of its files, on the publishing site's records."""
        by_path = {x.path: x for x in files if x.mtime is not None or x.ref is not None}
        if not by_path:
            return
        r, f = s.replicas, s.files
        rows = conn.execute(
            sa.select(r.c.id, f.c.path)
            .join(f, f.c.id == r.c.file_id)
            .where(r.c.representation_id == rep_id, r.c.site.in_(list(sites)), r.c.status == s.PRESENT)
        ).all()
        self._record_fingerprints(
            conn, [(row.id, by_path[row.path].mtime, by_path[row.path].ref) for row in rows if row.path in by_path]
        )

    @staticmethod
    def _representation_id(conn: Connection, project_id: int, key: RepresentationKey) -> int | None:
        row = conn.execute(sa.select(s.representations.c.id).where(*_key_is(project_id, key))).first()
        return None if row is None else int(row.id)

    @classmethod
    def _insert_representation(
        cls,
        conn: Connection,
        project_id: int,
        key: RepresentationKey,
        files: Sequence[FileFacts],
        actor: str,
        now: float,
    ) -> int:
        """A new representation row and its files (no replicas yet); returns its id."""
        rep_id = conn.execute(
            s.representations.insert()
            .values(
                project_id=project_id,
                folder=key.folder,
                product=key.product,
                version=key.version,
                name=key.name,
                file_count=len(files),
                total_size=sum(x.size for x in files),
                content_rev=1,
                created_at=now,
                updated_at=now,
                published_by=actor,
            )
            .returning(s.representations.c.id)
        ).scalar_one()
        cls._insert_files(conn, rep_id, files, now)
        count_new_representations(conn, project_id, 1)
        return int(rep_id)

    @staticmethod
    def _insert_files(conn: Connection, rep_id: int, files: Sequence[FileFacts], now: float) -> list[int]:
        """Insert files of a representation in bulk; their ids in the order given."""
        if not files:
            return []
        rows = [
            {
                "representation_id": rep_id,
                "path": x.path,
                "path_key": path_key(x.path),
                "size": x.size,
                "hash_algo": x.hash_algo,
                "hash": x.hash,
                "updated_at": now,
            }
            for x in files
        ]
        # one bulk insert, then the ids by (representation, path key), which is unique: an INSERT
        # ... RETURNING in parameter order ran one statement per file on SQLite
        insert_many(conn, s.files, rows)
        f = s.files
        ids = {
            row.path_key: row.id
            for row in conn.execute(sa.select(f.c.path_key, f.c.id).where(f.c.representation_id == rep_id))
        }
        return [ids[row["path_key"]] for row in rows]

    # ------------------------------------------------------------------ requests

    def want(
        self,
        rep_id: int,
        site: str,
        actor: str,
        *,
        priority: int | None = None,
        file_ids: Sequence[int] | None = None,
        alternatives: Sequence[str] = (),
    ) -> dict[str, int]:
        """Ask for the representation (or some of its files) on ``site``: queue what is missing,
        give failed files a fresh set of attempts; what an alternative of ``site`` holds is
        recorded present without a copy. Returns counts by outcome."""
        r = s.replicas
        now = time.time()
        with self._write() as conn:
            rep = conn.execute(
                sa.select(s.representations.c.project_id).where(s.representations.c.id == rep_id)
            ).first()
            if rep is None:
                raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
            self._lock_replicas(conn, rep_id)
            prio, paused = self._ensure_rep_site(conn, rep_id, site, actor, now, priority)
            queued = self._queue_missing(conn, rep_id, rep.project_id, site, prio, paused, now, file_ids)
            cond = [r.c.representation_id == rep_id, r.c.site == site, r.c.status == s.FAILED]
            if file_ids is not None:
                cond.append(r.c.file_id.in_(list(file_ids)))
            retried = conn.execute(r.update().where(*cond).values(**self._requeue_values(now))).rowcount or 0
            self._adopt_alternatives(conn, rep_id, site, alternatives, now)
            settled = self._settle_sources(conn, None, now, rep_ids=[rep_id])
            counts = {
                row.status: row.n
                for row in conn.execute(
                    sa.select(r.c.status, sa.func.count().label("n"))
                    .where(r.c.representation_id == rep_id, r.c.site == site)
                    .group_by(r.c.status)
                )
            }
            refresh_pairs(conn, {(rep_id, x) for x in (site, *alternatives)} | settled)
            self._events(
                conn,
                [
                    {
                        "kind": "request",
                        "actor": actor,
                        "project_id": rep.project_id,
                        "representation_id": rep_id,
                        "site": site,
                        "message": f"wanted on {site}: {queued} queued, {retried} failed retried",
                    }
                ],
            )
        return {"queued": queued, "retried": retried, **{f"now_{k}": v for k, v in counts.items()}}

    def reset(
        self,
        rep_id: int,
        sites: Sequence[str],
        actor: str,
        *,
        include_present: bool = False,
        file_id: int | None = None,
    ) -> dict[str, int]:
        """Re-sync: clear attempts and errors of the representation's files on ``sites`` and queue
        them again. With ``include_present`` verified copies are re-copied too, but only where
        another verified copy of the file exists (the last copy is never given up)."""
        r = s.replicas
        now = time.time()
        other = r.alias("other")
        result = {"requeued": 0, "kept_only_copy": 0}
        with self._write() as conn:
            rep = conn.execute(
                sa.select(s.representations.c.project_id).where(s.representations.c.id == rep_id)
            ).first()
            if rep is None:
                raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
            self._lock_replicas(conn, rep_id)
            base = [r.c.representation_id == rep_id, r.c.site.in_(list(sites))]
            if file_id is not None:
                base.append(r.c.file_id == file_id)
            result["requeued"] += (
                conn.execute(
                    r.update().where(*base, r.c.status.in_(_WANTED)).values(**self._requeue_values(now))
                ).rowcount
                or 0
            )
            if include_present:
                has_other = sa.exists().where(
                    other.c.file_id == r.c.file_id, other.c.site != r.c.site, other.c.status == s.PRESENT
                )
                result["requeued"] += (
                    conn.execute(
                        r.update().where(*base, r.c.status == s.PRESENT, has_other).values(**self._requeue_values(now))
                    ).rowcount
                    or 0
                )
                result["kept_only_copy"] = conn.execute(
                    sa.select(sa.func.count()).select_from(r).where(*base, r.c.status == s.PRESENT)
                ).scalar_one()
            settled = self._settle_sources(conn, None, now, rep_ids=[rep_id])
            refresh_pairs(conn, {(rep_id, site) for site in sites} | settled)
            self._events(
                conn,
                [
                    {
                        "kind": "reset",
                        "actor": actor,
                        "project_id": rep.project_id,
                        "representation_id": rep_id,
                        "file_id": file_id,
                        "site": ",".join(sites),
                        "message": f"{result['requeued']} files queued again",
                    }
                ],
            )
        return result

    def set_priority(self, rep_id: int, priority: int, actor: str, site: str | None = None) -> int:
        return self._set_on_sites(rep_id, site, actor, {"priority": priority}, "priority", f"priority {priority}")

    def set_representation_paused(self, rep_id: int, paused: bool, actor: str, site: str | None = None) -> int:
        """Pause or resume a representation on one site or on every site it is wanted on. Only the
        pause flag changes: per-file state (attempts, errors, presence) is left exactly as it is."""
        return self._set_on_sites(rep_id, site, actor, {"paused": paused}, "pause" if paused else "resume", None)

    def _set_on_sites(
        self, rep_id: int, site: str | None, actor: str, values: dict[str, Any], kind: str, message: str | None
    ) -> int:
        """Set a representation-per-site field (priority, paused) on one site or every site it is
        wanted on, on the representation_sites rows and on the replicas that carry a copy of it.
        Returns how many sites changed."""
        t, r = s.representation_sites, s.replicas
        with self._write() as conn:
            rep = self._require_rep(conn, rep_id)
            self._lock_replicas(conn, rep_id)
            if site is None and "paused" in values:
                # every site, including those it is requested on later (``_ensure_rep_site``)
                conn.execute(
                    s.representations.update().where(s.representations.c.id == rep_id).values(paused=values["paused"])
                )
            cond_t = [t.c.representation_id == rep_id]
            cond_r = [r.c.representation_id == rep_id]
            if site is not None:
                cond_t.append(t.c.site == site)
                cond_r.append(r.c.site == site)
            sites = sorted(conn.execute(sa.select(t.c.site).where(*cond_t)).scalars())
            n = conn.execute(t.update().where(*cond_t).values(**values)).rowcount or 0
            conn.execute(r.update().where(*cond_r).values(**values))
            if site is None:
                refresh_representations(conn, [rep_id])
            else:
                refresh_pairs(conn, [(rep_id, site)])
            event = {"kind": kind, "actor": actor, "project_id": rep.project_id, "representation_id": rep_id}
            # every site it applied to, as a re-sync records them, so no event lacks its site
            self._events(conn, [{**event, "site": site or ",".join(sites) or None, "message": message}])
            return n

    @staticmethod
    def _require_rep(conn: Connection, rep_id: int) -> Any:
        rep = conn.execute(
            sa.select(s.representations.c.id, s.representations.c.project_id).where(s.representations.c.id == rep_id)
        ).first()
        if rep is None:
            raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
        return rep

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
            self._events(conn, [{"kind": "site_forgotten", "actor": actor, "site": site, "message": f"{n} records"}])
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


__all__ = ["DEFAULT_PRIORITY", "CatalogMixin", "path_key", "version_label"]
