"""State store: publishing a representation (new, or again with changed content: the changed files
updated and every site that held the old content queued again)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.base import chunked, event, ids_in, ids_param, insert_many
from sitesync.state.catalog import CatalogMixin, _key_is, path_key
from sitesync.state.records import FileFacts, PublishResult, RepresentationKey
from sitesync.state.summaries import count_new_representations, refresh_representations

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


class PublishMixin(CatalogMixin):
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
                        event(
                            "publish",
                            actor,
                            project_id=project_id,
                            representation_id=rep_id,
                            site=present_site,
                            nbytes=total,
                            message=f"{key.label}: {len(files)} files; queued on {', '.join(queue_sites) or '-'}",
                        )
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
                    event(
                        "publish",
                        actor,
                        project_id=project_id,
                        representation_id=rep_id,
                        site=present_site,
                        nbytes=total,
                        message=message,
                    )
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
