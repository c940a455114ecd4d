"""Workfiles in the catalog, part two: the transfers' claims (a lease on one workfile and site,
so two workers never do the same transfer) and outcomes, conflicts and their resolution, restores,
locks and pruning of the versions area. Recording scans is ``workfiles.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sitesync.errors import ConflictError, InvalidInputError, NotFoundError
from sitesync.state import schema as s
from sitesync.state.base import event
from sitesync.state.workfiles import VersionRow, WorkfilesMixin, _version, _workfile


@dataclass(frozen=True, slots=True)
class ConflictRow:
    id: int
    workfile_id: int
    site: str
    local_version_id: int | None
    incoming_version_id: int | None
    conflict_path: str | None
    incoming_path: str | None
    kind: str
    detected_at: float
    resolved_at: float | None
    resolution: str | None
    resolved_by: str | None
    message: str | None


@dataclass(frozen=True, slots=True)
class LockRow:
    workfile_id: int
    site: str
    user: str
    machine: str
    acquired_at: float
    expires_at: float


def _conflict(row: Any) -> ConflictRow:
    return ConflictRow(**{k: row._mapping[k] for k in ConflictRow.__slots__})


class WorkfileOpsMixin(WorkfilesMixin):
    # ------------------------------------------------------------------ claims and outcomes

    def claim_workfile_site(self, workfile_id: int, site: str, owner: str, seconds: float = 300.0) -> bool:
        """Lease (workfile, site) for ``owner``: True if no other live worker holds it and no retry
        waits. One statement (a compare-and-swap), so two workers never both get it."""
        c = s.workfile_copies
        now = time.time()
        with self._write() as conn:
            exists = conn.execute(sa.select(c.c.site).where(c.c.workfile_id == workfile_id, c.c.site == site)).first()
            if exists is None:
                conn.execute(c.insert().values(workfile_id=workfile_id, site=site, version_id=None, updated_at=now))
            done = conn.execute(
                c.update()
                .where(
                    c.c.workfile_id == workfile_id,
                    c.c.site == site,
                    sa.or_(c.c.lease_owner.is_(None), c.c.lease_owner == owner, c.c.lease_expires_at < now),
                    sa.or_(c.c.next_attempt_at.is_(None), c.c.next_attempt_at <= now),
                )
                .values(lease_owner=owner, lease_expires_at=now + seconds)
            )
            return bool(done.rowcount)

    def release_workfile_site(
        self,
        workfile_id: int,
        site: str,
        owner: str,
        *,
        version_id: int | None = None,
        set_version: bool = False,
        error: str | None = None,
        attempts: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """End a lease: record the version the site now holds (``set_version``), or the failure."""
        c = s.workfile_copies
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "updated_at": time.time()}
        if set_version:
            values.update(version_id=version_id, attempts=0, last_error=None, next_attempt_at=None)
        if error is not None:
            values.update(last_error=error, attempts=attempts or 0)
            values["next_attempt_at"] = None if retry_after is None else time.time() + retry_after
        with self._write() as conn:
            conn.execute(
                c.update()
                .where(c.c.workfile_id == workfile_id, c.c.site == site, c.c.lease_owner == owner)
                .values(**values)
            )

    def set_version_kept(self, version_id: int, site: str, path: str) -> None:
        v = s.workfile_versions
        with self._write() as conn:
            conn.execute(v.update().where(v.c.id == version_id).values(kept_at=path, kept_site=site))

    def workfile_conflict_copies(self, conflict_ids: list[int]) -> dict[int, dict[str, str]]:
        """conflict id -> site -> the path its other content was placed at."""
        t = s.workfile_conflict_copies
        out: dict[int, dict[str, str]] = {i: {} for i in conflict_ids}
        if not conflict_ids:
            return out
        with self._read() as conn:
            for row in conn.execute(sa.select(t).where(t.c.conflict_id.in_(conflict_ids))):
                out[row.conflict_id][row.site] = row.path
        return out

    def conflict_copy_placed(self, conflict_id: int, site: str, path: str, version_id: int) -> None:
        t = s.workfile_conflict_copies
        with self._write() as conn:
            conn.execute(t.delete().where(t.c.conflict_id == conflict_id, t.c.site == site))
            conn.execute(
                t.insert().values(
                    conflict_id=conflict_id, site=site, path=path, version_id=version_id, placed_at=time.time()
                )
            )

    # ------------------------------------------------------------------ conflicts

    def workfile_conflicts(
        self, project_id: int, *, include_resolved: bool = False
    ) -> list[tuple[ConflictRow, str, str]]:
        """(conflict, root, path) of a project, open ones (or all), newest first."""
        cf, w = s.workfile_conflicts, s.workfiles
        q = (
            sa.select(cf, w.c.root, w.c.path)
            .join(w, w.c.id == cf.c.workfile_id)
            .where(w.c.project_id == project_id)
            .order_by(cf.c.id.desc())
        )
        if not include_resolved:
            q = q.where(cf.c.resolved_at.is_(None))
        with self._read() as conn:
            return [(_conflict(r), r.root, r.path) for r in conn.execute(q)]

    def resolve_workfile_conflicts(
        self, workfile_id: int, winner: str, site: str, actor: str, user: str, machine: str
    ) -> tuple[VersionRow | None, list[tuple[str, VersionRow]]]:
        """Resolve every open conflict of a workfile. ``winner``: ``conflicting`` (the conflicting
        site's content becomes a new head, kind resolve), ``current`` (the head stays; the
        conflicting site gets it back, its content stays kept), or ``both`` (the head stays and the
        conflicting content becomes a workfile of its own at its conflict name). Returns the new head
        (or None) and the workfiles made for ``both`` (path, version)."""
        cf, w = s.workfile_conflicts, s.workfiles
        now = time.time()
        made: list[tuple[str, VersionRow]] = []
        new_head = None
        with self._write() as conn:
            wf = conn.execute(sa.select(w).where(w.c.id == workfile_id)).first()
            if wf is None:
                raise NotFoundError(f"unknown workfile {workfile_id}")
            rows = [
                _conflict(r)
                for r in conn.execute(
                    sa.select(cf).where(cf.c.workfile_id == workfile_id, cf.c.resolved_at.is_(None)).order_by(cf.c.id)
                )
            ]
            if not rows:
                raise ConflictError(f"{wf.path} has no open conflict; see `sitesync work conflicts PROJECT`")
            head = self._held(conn, wf.head_version_id)
            for row in rows:
                local = self._held(conn, row.local_version_id)
                if row.conflict_path is None or local is None or local.hash is None:
                    continue  # a recorded deletion conflict: nothing to choose
                if winner == "conflicting" and head is not None and local.hash != head.hash:
                    new_head = self._new_version(
                        conn, wf.id, "resolve", head.id, local.hash, local.size, local.mtime, site, user, machine
                    )
                    if local.kept_at is not None:
                        v = s.workfile_versions
                        conn.execute(v.update().where(v.c.id == new_head.id).values(kept_at=None))
                    self._set_head(conn, wf.id, new_head)
                    self._set_copy(conn, wf.id, row.site, new_head.id)  # it holds that content already
                    head = new_head
                elif winner == "both":
                    made.append((row.conflict_path, self._both(conn, wf, row, local, user, machine)))
            conn.execute(
                cf.update()
                .where(cf.c.workfile_id == workfile_id, cf.c.resolved_at.is_(None))
                .values(resolved_at=now, resolution=winner, resolved_by=actor)
            )
            conn.execute(w.update().where(w.c.id == workfile_id).values(in_conflict=False, updated_at=now))
            self._events(
                conn,
                [
                    event(
                        "workfile_resolve",
                        actor,
                        project_id=wf.project_id,
                        site=site,
                        message=f"{wf.root}:{wf.path} resolved, keeping {winner}",
                    )
                ],
            )
        return new_head, made

    def _both(self, conn: Any, wf: Any, row: ConflictRow, local: VersionRow, user: str, machine: str) -> VersionRow:
        """The conflicting content as a workfile of its own at its conflict name; the sites where
        it was placed hold it already."""
        assert row.conflict_path is not None  # only blocking conflicts are resolved this way
        own = self._lock_workfile(conn, wf.project_id, wf.root, row.conflict_path, create=True)
        version = self._new_version(
            conn, own.id, "resolve", None, local.hash, local.size, local.mtime, row.site, user, machine
        )
        self._set_head(conn, own.id, version)
        cc = s.workfile_conflict_copies
        for placed in conn.execute(sa.select(cc).where(cc.c.conflict_id == row.id, cc.c.path == row.conflict_path)):
            self._set_copy(conn, own.id, placed.site, version.id)
        return version

    # ------------------------------------------------------------------ restore

    def restore_workfile_version(
        self, workfile_id: int, number: int, site: str, actor: str, user: str, machine: str
    ) -> VersionRow:
        """A new head with the content of version ``number`` (kind restore): it propagates like any
        edit. Refused while the path is in conflict or when that content is no longer kept."""
        w, v = s.workfiles, s.workfile_versions
        with self._write() as conn:
            wf = conn.execute(sa.select(w).where(w.c.id == workfile_id)).first()
            if wf is None:
                raise NotFoundError(f"unknown workfile {workfile_id}")
            if wf.in_conflict:
                raise ConflictError(f"{wf.path} is in conflict: resolve it first (`sitesync work resolve`)")
            old = conn.execute(sa.select(v).where(v.c.workfile_id == workfile_id, v.c.number == number)).first()
            if old is None:
                raise InvalidInputError(f"{wf.path} has no version {number}; see `sitesync work history`")
            if old.hash is None:
                raise InvalidInputError(f"version {number} of {wf.path} is a deletion; pick a version with content")
            kept = conn.execute(
                sa.select(v.c.id).where(v.c.workfile_id == workfile_id, v.c.hash == old.hash, v.c.kept_at.is_not(None))
            ).first()
            held = conn.execute(
                sa.select(s.workfile_copies.c.site)
                .join(v, v.c.id == s.workfile_copies.c.version_id)
                .where(s.workfile_copies.c.workfile_id == workfile_id, v.c.hash == old.hash)
            ).first()
            if kept is None and held is None:
                raise ConflictError(
                    f"version {number} of {wf.path} is no longer kept anywhere (pruned after keep_versions_days)"
                )
            made = self._new_version(
                conn, wf.id, "restore", wf.head_version_id, old.hash, old.size, old.mtime, site, user, machine
            )
            self._set_head(conn, wf.id, made)
            self._events(
                conn,
                [
                    event(
                        "workfile_restore",
                        actor,
                        project_id=wf.project_id,
                        site=site,
                        message=f"{wf.root}:{wf.path} version {number} restored as version {made.number}",
                    )
                ],
            )
            return made

    # ------------------------------------------------------------------ locks

    def workfile_locks(self, workfile_ids: list[int]) -> dict[int, LockRow]:
        lk = s.workfile_locks
        out: dict[int, LockRow] = {}
        with self._read() as conn:
            for start in range(0, len(workfile_ids), 500):
                ids = workfile_ids[start : start + 500]
                q = sa.select(lk).where(lk.c.workfile_id.in_(ids), lk.c.expires_at > time.time())
                for r in conn.execute(q):
                    out[r.workfile_id] = LockRow(**dict(r._mapping))
        return out

    def lock_workfile(
        self, project_id: int, root: str, path: str, site: str, user: str, machine: str, hours: float, actor: str
    ) -> LockRow:
        """Take (or renew) the lock; refused while another site or user holds it unexpired."""
        lk = s.workfile_locks
        now = time.time()
        with self._write() as conn:
            wf = self._lock_workfile(conn, project_id, root, path, create=True)
            row = conn.execute(sa.select(lk).where(lk.c.workfile_id == wf.id)).first()
            if row is not None and row.expires_at > now and (row.site, row.user) != (site, user):
                raise ConflictError(
                    f"{path} is locked by {row.user} on site {row.site} until "
                    f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(row.expires_at))}; ask them, or "
                    "`sitesync work unlock --force`"
                )
            conn.execute(lk.delete().where(lk.c.workfile_id == wf.id))
            lock = LockRow(wf.id, site, user, machine, now, now + hours * 3600)
            conn.execute(lk.insert().values(**{k: getattr(lock, k) for k in LockRow.__slots__}))
            self._events(
                conn,
                [
                    event(
                        "workfile_lock",
                        actor,
                        project_id=project_id,
                        site=site,
                        message=f"{root}:{path} locked by {user} on {site}",
                    )
                ],
            )
            return lock

    def unlock_workfile(
        self, project_id: int, root: str, path: str, site: str, user: str, actor: str, *, force: bool
    ) -> LockRow | None:
        """Release the lock (the holder), or break it (``force``, recorded). Returns the lock removed."""
        lk = s.workfile_locks
        with self._write() as conn:
            wf = self._lock_workfile(conn, project_id, root, path, create=False)
            row = None if wf is None else conn.execute(sa.select(lk).where(lk.c.workfile_id == wf.id)).first()
            if row is None:
                return None
            lock = LockRow(**dict(row._mapping))
            mine = (lock.site, lock.user) == (site, user) or lock.expires_at <= time.time()
            if not mine and not force:
                raise ConflictError(
                    f"{path} is locked by {lock.user} on site {lock.site}; only they can unlock it, or break "
                    "the lock with `--force` (recorded)"
                )
            conn.execute(lk.delete().where(lk.c.workfile_id == wf.id))
            verb = "unlocked" if mine else f"lock of {lock.user}@{lock.site} broken (forced)"
            self._events(
                conn,
                [
                    event(
                        "workfile_unlock",
                        actor,
                        project_id=project_id,
                        site=site,
                        message=f"{root}:{path} {verb} by {user} on {site}",
                    )
                ],
            )
            return lock

    # ------------------------------------------------------------------ pruning the versions area

    def prunable_workfile_versions(self, project_id: int, older_than: float) -> list[VersionRow]:
        """Kept versions replaced before ``older_than`` (epoch): not a head, not in an open
        conflict, held by no site, and with a newer version recorded before that time."""
        v, w, c, cf = s.workfile_versions, s.workfiles, s.workfile_copies, s.workfile_conflicts
        newer = sa.alias(v)
        q = (
            sa.select(v)
            .join(w, w.c.id == v.c.workfile_id)
            .where(
                w.c.project_id == project_id,
                v.c.kept_at.is_not(None),
                v.c.id != sa.func.coalesce(w.c.head_version_id, -1),
                sa.exists().where(
                    newer.c.workfile_id == v.c.workfile_id,
                    newer.c.number == v.c.number + 1,
                    newer.c.recorded_at < older_than,
                ),
                ~sa.exists().where(c.c.version_id == v.c.id),
                ~sa.exists().where(
                    cf.c.resolved_at.is_(None),
                    sa.or_(cf.c.local_version_id == v.c.id, cf.c.incoming_version_id == v.c.id),
                ),
            )
        )
        with self._read() as conn:
            return [_version(r) for r in conn.execute(q)]

    def version_pruned(self, version_id: int) -> None:
        v = s.workfile_versions
        with self._write() as conn:
            conn.execute(v.update().where(v.c.id == version_id).values(kept_at=None, kept_site=None))


__all__ = ["ConflictRow", "LockRow", "WorkfileOpsMixin", "_workfile"]
