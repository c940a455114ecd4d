"""State store, removal side: the guarded removal of a site's copies, as records.

The whole removal is owned by ``engine/removal.py``; here are its transactions:

* ``begin_remove``: the ``min_copies`` guard (copies on other *storages*: a site's alternatives are
  the same storage and count once) and marking the copies ``removing`` under a lease, in one
  transaction; the ticket binds each copy to the content last verified there (size and hash, plus
  the storage fingerprint), so the removal deletes that content and nothing else;
* ``removal_owned``: which of them this remover still holds (a publish in place takes a copy back);
* ``finish_remove`` / ``abort_remove``: the outcome, applied only to records this owner still holds;
* ``claim_stale_removals``: removals whose remover stopped (Ctrl-C, SIGKILL): a worker takes them
  over and finishes them through the same checks.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from sitesync.errors import ConflictError, GuardRefusedError, NotFoundError
from sitesync.paths import shown_path
from sitesync.state import schema as s
from sitesync.state.base import chunked, event
from sitesync.state.physical import PhysicalMixin
from sitesync.state.records import RemovalItem, RemovalTicket
from sitesync.state.summaries import refresh_representations


def _item(row: Any) -> RemovalItem:
    """A removal item from a replica row joined to its file; the expected content is what was last
    verified there (the file's current content when that was never recorded)."""
    algo, digest = row.hash_algo, row.hash
    if row.seen_hash and ":" in row.seen_hash:
        algo, digest = row.seen_hash.split(":", 1)
    return RemovalItem(
        replica_id=row.id,
        file_id=row.file_id,
        representation_id=row.representation_id,
        path=row.path,
        size=row.seen_size if row.seen_size is not None else row.size,
        hash_algo=algo,
        hash=digest,
        seen_mtime=row.seen_mtime,
        provider_ref=row.provider_ref,
    )


def _item_columns() -> list[Any]:
    r, f = s.replicas, s.files
    return [
        r.c.id,
        r.c.file_id,
        r.c.representation_id,
        f.c.path,
        f.c.size,
        f.c.hash_algo,
        f.c.hash,
        r.c.seen_size,
        r.c.seen_hash,
        r.c.seen_mtime,
        r.c.provider_ref,
    ]


class RemovalsMixin(PhysicalMixin):
    def begin_remove(
        self,
        rep_id: int,
        site: str,
        min_copies: int,
        owner: str,
        actor: str,
        lease_seconds: float = 600.0,
        file_ids: Sequence[int] | None = None,
        same_storage: Mapping[str, Collection[str]] | None = None,
    ) -> RemovalTicket:
        """Check the ``min_copies`` guard and mark the site's copies ``removing`` in one transaction.

        Refuses (nothing changed) if any file would keep fewer than ``min_copies`` verified copies
        on other storages, or if a transfer to the site is running. Records without a copy on the
        site are dropped. ``same_storage`` (site -> its alternatives) makes sites that are one
        storage count as one copy, and never counts the removed site's own alternatives.
        """
        r, f = s.replicas, s.files
        now = time.time()
        with self._write() as conn:
            rep = conn.execute(
                sa.select(s.representations.c.id, s.representations.c.project_id).where(
                    s.representations.c.id == rep_id
                )
            ).first()
            if rep is None:
                raise NotFoundError(f"unknown representation {rep_id}; see `sitesync status PROJECT`")
            if self.is_postgres:
                conn.execute(
                    sa.select(r.c.id).where(r.c.representation_id == rep_id).order_by(r.c.id).with_for_update()
                )
            cond = [r.c.representation_id == rep_id, r.c.site == site]
            if file_ids is not None:
                cond.append(r.c.file_id.in_(list(file_ids)))
            rows = conn.execute(
                sa.select(*_item_columns(), r.c.status, r.c.lease_owner, r.c.lease_expires_at)
                .join(f, f.c.id == r.c.file_id)
                .where(*cond)
                .order_by(f.c.path)
            ).all()
            if not rows:
                raise NotFoundError(f"representation {rep_id} has no copy on site {site!r} and is not wanted there")
            busy = [x for x in rows if x.status == s.IN_PROGRESS]
            stuck = [
                x for x in rows if x.status == s.REMOVING and (x.lease_expires_at or 0) > now and x.lease_owner != owner
            ]
            if busy or stuck:
                n = len(busy) + len(stuck)
                raise ConflictError(
                    f"{n} files of representation {rep_id} are being transferred to or removed from site "
                    f"{site!r} right now; try again when that finishes"
                )
            present = [x for x in rows if x.status in (s.PRESENT, s.REMOVING)]
            wanted_only = [x.id for x in rows if x.status in s.NOT_HELD]
            if present:
                fids = [x.file_id for x in present]
                if self.is_postgres:
                    # serialise concurrent removals of the same files on different sites
                    for part in chunked(sorted(fids)):
                        conn.execute(sa.select(f.c.id).where(f.c.id.in_(part)).order_by(f.c.id).with_for_update())
                alts = same_storage or {}
                group = [site, *alts.get(site, ())]
                holders: dict[int, set[str]] = {}
                for part in chunked(fids):
                    for row in conn.execute(
                        sa.select(r.c.file_id, r.c.site).where(
                            r.c.file_id.in_(part), r.c.site.notin_(group), r.c.status == s.PRESENT
                        )
                    ):
                        # one storage reached several ways is one copy
                        holders.setdefault(row.file_id, set()).add(min({row.site, *alts.get(row.site, ())}))
                others = {fid: len(storages) for fid, storages in holders.items()}
                short = [x for x in present if others.get(x.file_id, 0) < min_copies]
                if short:
                    example = short[0]
                    raise GuardRefusedError(
                        f"refused: removing the copy of representation {rep_id} on site {site} would leave "
                        f"{len(short)} of {len(present)} files with fewer than min_copies={min_copies} verified "
                        f"copies elsewhere (e.g. {shown_path(example.path)} has {others.get(example.file_id, 0)}); "
                        "upload them to another site first"
                    )
                for part in chunked([x.id for x in present]):
                    conn.execute(
                        r.update()
                        .where(r.c.id.in_(part))
                        .values(
                            status=s.REMOVING,
                            lease_owner=owner,
                            lease_expires_at=now + lease_seconds,
                            updated_at=now,
                        )
                    )
            for part in chunked(wanted_only):
                conn.execute(r.delete().where(r.c.id.in_(part)))
            if file_ids is None:
                t = s.representation_sites
                conn.execute(t.delete().where(t.c.representation_id == rep_id, t.c.site == site))
            refresh_representations(conn, [rep_id])
            self._events(
                conn,
                [
                    event(
                        "remove_begin",
                        actor,
                        project_id=rep.project_id,
                        representation_id=rep_id,
                        site=site,
                        message=f"{len(present)} copies to delete, {len(wanted_only)} records without a copy dropped",
                    )
                ],
            )
        return RemovalTicket(site, rep_id, owner, tuple(_item(x) for x in present), len(wanted_only))

    def removal_owned(self, replica_ids: Sequence[int], owner: str) -> set[int]:
        """Which of these replicas are still ``removing`` under ``owner``'s lease (a publish in place
        or another remover may have taken one back)."""
        r = s.replicas
        out: set[int] = set()
        with self._read() as conn:
            for part in chunked(list(replica_ids)):
                out.update(
                    conn.execute(
                        sa.select(r.c.id).where(r.c.id.in_(part), r.c.status == s.REMOVING, r.c.lease_owner == owner)
                    ).scalars()
                )
        return out

    def renew_removal(self, replica_ids: Sequence[int], owner: str, lease_seconds: float) -> None:
        """Keep a long removal's lease alive."""
        r = s.replicas
        with self._write() as conn:
            for part in chunked(list(replica_ids)):
                conn.execute(
                    r.update()
                    .where(r.c.id.in_(part), r.c.status == s.REMOVING, r.c.lease_owner == owner)
                    .values(lease_expires_at=time.time() + lease_seconds)
                )

    def finish_remove(
        self,
        replica_ids: Sequence[int],
        rep_id: int,
        site: str,
        actor: str,
        alternatives: Sequence[str] = (),
        *,
        owner: str,
        message: str | None = None,
    ) -> int:
        """The copies are gone from storage (deleted, found missing, or found replaced by another
        file that was left alone): drop their records, and the records of the same files on the
        site's ``alternatives`` (the same storage). Only records ``owner`` still holds change."""
        r = s.replicas
        n = 0
        now = time.time()
        with self._write() as conn:
            rep = conn.execute(
                sa.select(s.representations.c.project_id).where(s.representations.c.id == rep_id)
            ).first()
            gone_files: list[int] = []
            for part in chunked(list(replica_ids)):
                mine = [r.c.id.in_(part), r.c.status == s.REMOVING, r.c.lease_owner == owner]
                gone = list(conn.execute(sa.select(r.c.file_id).where(*mine)).scalars())
                gone_files += gone
                if alternatives and gone:
                    conn.execute(
                        r.delete().where(
                            r.c.file_id.in_(gone), r.c.site.in_(list(alternatives)), r.c.status == s.PRESENT
                        )
                    )
                n += conn.execute(r.delete().where(*mine)).rowcount or 0
            self._settle_sources(conn, gone_files, now)
            refresh_representations(conn, [rep_id])
            self._events(
                conn,
                [
                    event(
                        "remove",
                        actor,
                        project_id=rep.project_id if rep else None,
                        representation_id=rep_id,
                        site=site,
                        message=message or f"{n} copies deleted from {site}",
                    )
                ],
            )
        return n

    def abort_remove(self, replica_ids: Sequence[int], owner: str, reason: str | None = None) -> int:
        """The copies were not deleted and are still there, unchanged: verified copies again."""
        r = s.replicas
        now = time.time()
        n = 0
        with self._write() as conn:
            reps: set[int] = set()
            files: list[int] = []
            for part in chunked(list(replica_ids)):
                mine = [r.c.id.in_(part), r.c.status == s.REMOVING, r.c.lease_owner == owner]
                for row in conn.execute(sa.select(r.c.representation_id, r.c.file_id).where(*mine)):
                    reps.add(row.representation_id)
                    files.append(row.file_id)
                n += (
                    conn.execute(
                        r.update()
                        .where(*mine)
                        .values(status=s.PRESENT, lease_owner=None, lease_expires_at=None, updated_at=now)
                    ).rowcount
                    or 0
                )
            if reason and reps:
                self._events(
                    conn,
                    [event("remove_aborted", owner, representation_id=i, message=reason) for i in sorted(reps)],
                )
            self._settle_sources(conn, files, now)  # verified copies again: sources again
            refresh_representations(conn, reps)
        return n

    def stale_removal_sites(self, now: float | None = None) -> dict[int, set[str]]:
        """Where removals whose remover stopped midway wait to be taken over: project id -> sites
        (read only; a worker probes only these sites before ``claim_stale_removals``)."""
        now = time.time() if now is None else now
        r = s.replicas
        q = (
            sa.select(r.c.project_id, r.c.site)
            .where(r.c.lease_owner.is_not(None), r.c.lease_expires_at < now, r.c.status == s.REMOVING)
            .distinct()
        )
        out: dict[int, set[str]] = {}
        with self._read() as conn:
            for row in conn.execute(q):
                out.setdefault(row.project_id, set()).add(row.site)
        return out

    def claim_stale_removals(
        self,
        sites: Iterable[str],
        owner: str,
        lease_seconds: float,
        limit: int = 500,
        now: float | None = None,
        *,
        project_id: int | None = None,
    ) -> list[tuple[str, RemovalItem]]:
        """Removals (of ``project_id``, or any project) whose remover stopped midway, leased to
        ``owner``: (site, item)."""
        now = time.time() if now is None else now
        r, f = s.replicas, s.files
        sites = list(sites)
        if not sites:
            return []
        with self._write() as conn:
            q = (
                sa.select(*_item_columns(), r.c.site)
                .join(f, f.c.id == r.c.file_id)
                .where(
                    r.c.lease_owner.is_not(None),
                    r.c.lease_expires_at < now,
                    r.c.status == s.REMOVING,
                    r.c.site.in_(sites),
                )
                .limit(limit)
            )
            if project_id is not None:
                q = q.where(r.c.project_id == project_id)
            if self.is_postgres:  # two workers never take over the same removal
                q = q.with_for_update(skip_locked=True, of=r)
            rows = conn.execute(q).all()
            for part in chunked([row.id for row in rows]):
                conn.execute(
                    r.update()
                    .where(r.c.id.in_(part), r.c.status == s.REMOVING, r.c.lease_expires_at < now)
                    .values(lease_owner=owner, lease_expires_at=now + lease_seconds)
                )
        return [(row.site, _item(row)) for row in rows]


__all__ = ["RemovalsMixin"]
