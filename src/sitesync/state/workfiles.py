"""Workfiles in the catalog (issue 15): the scanner's stat cache, and recording what a scan found
as versions, each a compare-and-swap on the workfile's head in one transaction (the decision is
``workfiles/versions.py``; this module only reads and writes the rows). Transfers' claims,
conflicts, locks, history and pruning are in ``workfiles_ops.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.base import StoreBase, event
from sitesync.workfiles.versions import Decision, FileState, Held, conflict_name, decide_delete, decide_edit

if TYPE_CHECKING:
    # the scanner (and its pattern matcher, pathspec) is imported by the methods that store scan
    # facts: the state store is loaded by every command, most of which never scan
    from sitesync.workfiles.scan import FileFacts


@dataclass(frozen=True, slots=True)
class Change:
    """What a scan of one site found at one workfile path."""

    root: str
    path: str
    hash: str | None  # None: the file is gone
    size: int | None = None
    mtime: float | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    root: str
    path: str
    decision: str  # versions.Decision value
    version: int | None  # the number of the version recorded (None: none)
    conflict_id: int | None = None


@dataclass(frozen=True, slots=True)
class VersionRow:
    id: int
    workfile_id: int
    number: int
    parent_version_id: int | None
    kind: str
    hash: str | None
    size: int | None
    mtime: float | None
    made_on_site: str
    made_by_user: str
    machine: str
    recorded_at: float
    kept_at: str | None
    kept_site: str | None

    @property
    def held(self) -> Held:
        return Held(self.id, self.number, self.kind, self.hash)


@dataclass(frozen=True, slots=True)
class WorkfileRow:
    id: int
    project_id: int
    root: str
    path: str
    head_version_id: int | None
    deleted: bool
    in_conflict: bool
    updated_at: float


def _version(row: Any) -> VersionRow:
    return VersionRow(**{k: row._mapping[k] for k in VersionRow.__slots__})


def _workfile(row: Any) -> WorkfileRow:
    return WorkfileRow(**{k: row._mapping[k] for k in WorkfileRow.__slots__})


class WorkfilesMixin(StoreBase):
    # ------------------------------------------------------------------ the scanner's stat cache

    def load_scan_facts(self, site: str, project: int, root: str) -> dict[str, FileFacts]:
        """The last scan's facts of one site's work area (project id, root)."""
        from sitesync.workfiles.scan import FileFacts

        t = s.workfile_scan_facts
        q = sa.select(t).where(t.c.project_id == project, t.c.site == site, t.c.root == root)
        with self._read() as conn:
            return {
                r.path: FileFacts(r.path, int(r.size), int(r.mtime_ns), int(r.file_id), r.hash) for r in conn.execute(q)
            }

    def save_scan_facts(
        self, site: str, project: int, root: str, previous: Mapping[str, FileFacts], facts: Mapping[str, FileFacts]
    ) -> int:
        """Write what changed between two fact tables (gone rows deleted, new or changed upserted).
        Returns the rows written."""
        t = s.workfile_scan_facts
        gone = [p for p in previous if p not in facts]
        changed = [f for p, f in facts.items() if previous.get(p) != f]
        if not gone and not changed:
            return 0
        key = sa.and_(t.c.project_id == project, t.c.site == site, t.c.root == root)
        with self._write() as conn:
            paths = gone + [f.path for f in changed]
            for start in range(0, len(paths), 500):
                conn.execute(t.delete().where(key, t.c.path.in_(paths[start : start + 500])))
            if changed:
                conn.execute(
                    t.insert(),
                    [
                        {
                            "project_id": project,
                            "site": site,
                            "root": root,
                            "path": f.path,
                            "size": f.size,
                            "mtime_ns": f.mtime_ns,
                            "file_id": f.file_id,
                            "hash": f.hash,
                        }
                        for f in changed
                    ],
                )
        return len(gone) + len(changed)

    def put_scan_fact(self, site: str, project: int, root: str, path: str, facts: FileFacts | None) -> None:
        """Replace (or with None delete) one path's facts: what sitesync itself just wrote there."""
        from sitesync.workfiles.scan import FileFacts

        if facts is None:  # any previous row differs from none: it is deleted
            self.save_scan_facts(site, project, root, {path: FileFacts(path, -1, -1, -1, None)}, {})
        else:  # nothing previous: the row is written (replacing any)
            self.save_scan_facts(site, project, root, {}, {path: facts})

    # ------------------------------------------------------------------ rows

    def workfile(self, project_id: int, root: str, path: str) -> WorkfileRow | None:
        t = s.workfiles
        with self._read() as conn:
            row = conn.execute(
                sa.select(t).where(t.c.project_id == project_id, t.c.root == root, t.c.path == path)
            ).first()
        return None if row is None else _workfile(row)

    def workfiles_of(self, project_id: int) -> list[WorkfileRow]:
        t = s.workfiles
        with self._read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.project_id == project_id).order_by(t.c.root, t.c.path))
            return [_workfile(r) for r in rows]

    def workfiles_needing_work(self, project_id: int, sites: Sequence[str]) -> list[WorkfileRow]:
        """The workfiles a propagation pass over ``sites`` has something to do for: in conflict,
        a head whose content is not kept yet, or one of ``sites`` not known to hold the head. A
        settled project costs one pass over its rows' index entries, not a load of every version."""
        w, v, c = s.workfiles, s.workfile_versions, s.workfile_copies
        same = sa.alias(v)
        head_not_kept = sa.exists().where(
            v.c.id == w.c.head_version_id,
            v.c.hash.is_not(None),
            v.c.kept_at.is_(None),
            ~sa.exists().where(
                same.c.workfile_id == v.c.workfile_id, same.c.hash == v.c.hash, same.c.kept_at.is_not(None)
            ),
        )
        behind = [
            ~sa.exists().where(c.c.workfile_id == w.c.id, c.c.site == site, c.c.version_id == w.c.head_version_id)
            for site in sites
        ]
        q = (
            sa.select(w)
            .where(w.c.project_id == project_id, w.c.head_version_id.is_not(None))
            .where(sa.or_(w.c.in_conflict, head_not_kept, *behind))
            .order_by(w.c.root, w.c.path)
        )
        with self._read() as conn:
            return [_workfile(r) for r in conn.execute(q)]

    def workfile_versions(self, workfile_ids: Sequence[int]) -> dict[int, list[VersionRow]]:
        """Every version of the given workfiles, oldest first."""
        v = s.workfile_versions
        out: dict[int, list[VersionRow]] = {i: [] for i in workfile_ids}
        with self._read() as conn:
            for start in range(0, len(workfile_ids), 500):
                ids = list(workfile_ids[start : start + 500])
                for row in conn.execute(sa.select(v).where(v.c.workfile_id.in_(ids)).order_by(v.c.number)):
                    out[row.workfile_id].append(_version(row))
        return out

    def workfile_copies(self, workfile_ids: Sequence[int]) -> dict[int, dict[str, dict[str, Any]]]:
        """workfile id -> site -> its copy row (version_id, lease, attempts, error...)."""
        c = s.workfile_copies
        out: dict[int, dict[str, dict[str, Any]]] = {i: {} for i in workfile_ids}
        with self._read() as conn:
            for start in range(0, len(workfile_ids), 500):
                ids = list(workfile_ids[start : start + 500])
                for row in conn.execute(sa.select(c).where(c.c.workfile_id.in_(ids))):
                    out[row.workfile_id][row.site] = dict(row._mapping)
        return out

    # ------------------------------------------------------------------ recording changes

    def record_workfile_changes(
        self, project_id: int, site: str, changes: Sequence[Change], *, user: str, machine: str, actor: str
    ) -> list[Recorded]:
        """Record what a scan of ``site`` found, each path a compare-and-swap on its head in the
        transaction (``versions.decide_edit``/``decide_delete``)."""
        out = []
        for start in range(0, len(changes), 200):
            with self._write() as conn:
                for change in sorted(changes[start : start + 200], key=lambda c: (c.root, c.path)):
                    out.append(self._record(conn, project_id, site, change, user, machine, actor))
        return out

    def _lock_workfile(self, conn: Connection, project_id: int, root: str, path: str, create: bool) -> Any:
        t = s.workfiles
        q = sa.select(t).where(t.c.project_id == project_id, t.c.root == root, t.c.path == path)
        row = conn.execute(q.with_for_update() if self.is_postgres else q).first()
        if row is None and create:
            conn.execute(t.insert().values(project_id=project_id, root=root, path=path, updated_at=time.time()))
            row = conn.execute(q.with_for_update() if self.is_postgres else q).first()
        return row

    def _held(self, conn: Connection, version_id: int | None) -> VersionRow | None:
        if version_id is None:
            return None
        row = conn.execute(sa.select(s.workfile_versions).where(s.workfile_versions.c.id == version_id)).first()
        return None if row is None else _version(row)

    def _copy_version(self, conn: Connection, workfile_id: int, site: str) -> int | None:
        c = s.workfile_copies
        return conn.execute(
            sa.select(c.c.version_id).where(c.c.workfile_id == workfile_id, c.c.site == site)
        ).scalar_one_or_none()

    def _set_copy(self, conn: Connection, workfile_id: int, site: str, version_id: int | None) -> None:
        c = s.workfile_copies
        values = {"version_id": version_id, "updated_at": time.time(), "attempts": 0, "last_error": None}
        done = conn.execute(c.update().where(c.c.workfile_id == workfile_id, c.c.site == site).values(**values))
        if not done.rowcount:
            conn.execute(c.insert().values(workfile_id=workfile_id, site=site, **values))

    def _lock_holder(self, conn: Connection, workfile_id: int, site: str) -> str | None:
        lk = s.workfile_locks
        row = conn.execute(sa.select(lk).where(lk.c.workfile_id == workfile_id, lk.c.expires_at > time.time())).first()
        if row is None or row.site == site:
            return None
        return f"{row.user}@{row.site}"

    def _new_version(
        self,
        conn: Connection,
        workfile_id: int,
        kind: str,
        parent: int | None,
        content_hash: str | None,
        size: int | None,
        mtime: float | None,
        site: str,
        user: str,
        machine: str,
    ) -> VersionRow:
        v = s.workfile_versions
        number = int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(v.c.number), 0)).where(v.c.workfile_id == workfile_id)
            ).scalar_one()
        )
        values = {
            "workfile_id": workfile_id,
            "number": number + 1,
            "parent_version_id": parent,
            "kind": kind,
            "hash": content_hash,
            "size": size,
            "mtime": mtime,
            "made_on_site": site,
            "made_by_user": user,
            "machine": machine,
            "recorded_at": time.time(),
            "kept_at": None,
            "kept_site": None,
        }
        vid = conn.execute(v.insert().values(**values).returning(v.c.id)).scalar_one()
        return VersionRow(id=vid, **values)  # type: ignore[arg-type]

    def _set_head(self, conn: Connection, workfile_id: int, version: VersionRow) -> None:
        t = s.workfiles
        conn.execute(
            t.update()
            .where(t.c.id == workfile_id)
            .values(head_version_id=version.id, deleted=version.hash is None, updated_at=time.time())
        )

    def _conflict(
        self,
        conn: Connection,
        wf: Any,
        site: str,
        kind: str,
        local: VersionRow | None,
        incoming: VersionRow | None,
        message: str,
        *,
        blocking: bool,
    ) -> int:
        now = time.time()
        cf = s.workfile_conflicts
        values: dict[str, Any] = {
            "workfile_id": wf.id,
            "site": site,
            "local_version_id": local.id if local else None,
            "incoming_version_id": incoming.id if incoming else None,
            "kind": kind,
            "detected_at": now,
            "message": message,
            "conflict_path": None,
            "incoming_path": None,
        }
        if blocking and incoming is not None:
            taken = {
                name
                for row in conn.execute(
                    sa.select(cf.c.conflict_path, cf.c.incoming_path).where(cf.c.workfile_id == wf.id)
                )
                for name in row
            }
            when = now
            while (
                conflict_name(wf.path, site, when) in taken
                or conflict_name(wf.path, incoming.made_on_site, when) in taken
            ):
                when += 1.0  # two conflicts of one file within a second: the names stay distinct
            values["conflict_path"] = conflict_name(wf.path, site, when)
            values["incoming_path"] = conflict_name(wf.path, incoming.made_on_site, when)
            conn.execute(s.workfiles.update().where(s.workfiles.c.id == wf.id).values(in_conflict=True, updated_at=now))
        cid = int(conn.execute(cf.insert().values(**values).returning(cf.c.id)).scalar_one())
        self._events(
            conn,
            [
                event(
                    "workfile_conflict",
                    "sitesync",
                    project_id=wf.project_id,
                    site=site,
                    message=message,
                )
            ],
        )
        return cid

    def _record(
        self, conn: Connection, project_id: int, site: str, ch: Change, user: str, machine: str, actor: str
    ) -> Recorded:
        wf = self._lock_workfile(conn, project_id, ch.root, ch.path, create=ch.hash is not None)
        if wf is None:
            return Recorded(ch.root, ch.path, Decision.NOTHING.value, None)
        head = self._held(conn, wf.head_version_id)
        held = self._held(conn, self._copy_version(conn, wf.id, site))
        locker = self._lock_holder(conn, wf.id, site)
        state = FileState(head.held if head else None, held.held if held else None, wf.in_conflict, locker)
        decision = decide_edit(state, ch.hash) if ch.hash is not None else decide_delete(state)
        where = f"{ch.root}:{ch.path}"
        made: VersionRow | None = None
        cid = None

        def version(kind: str, parent: VersionRow | None) -> VersionRow:
            return self._new_version(
                conn, wf.id, kind, parent.id if parent else None, ch.hash, ch.size, ch.mtime, site, user, machine
            )

        if decision is Decision.ADOPT:
            self._set_copy(conn, wf.id, site, wf.head_version_id)
        elif decision in (Decision.FAST_FORWARD, Decision.DELETE, Decision.EDIT_OVER_DELETE):
            made = version("delete" if ch.hash is None else "edit", held)
            self._set_head(conn, wf.id, made)
            self._set_copy(conn, wf.id, site, made.id)
            if decision is Decision.EDIT_OVER_DELETE:
                cid = self._conflict(
                    conn,
                    wf,
                    head.made_on_site if head else site,
                    "delete-edit",
                    head,
                    made,
                    f"{where}: deleted on {head.made_on_site if head else '?'} while changed on {site}; "
                    f"the changed content (version {made.number}) is kept",
                    blocking=False,
                )
        elif decision in (Decision.CONFLICT, Decision.LOCKED):
            made = version("conflict", held)
            self._set_copy(conn, wf.id, site, made.id)
            kind = "locked-edit" if decision is Decision.LOCKED else "edit-edit"
            why = f"locked by {locker}" if decision is Decision.LOCKED else "changed on two sites from the same base"
            cid = self._conflict(
                conn,
                wf,
                site,
                kind,
                made,
                head,
                f"{where}: {why}; {site}'s content is version {made.number}, the current is version "
                f"{head.number if head else '?'}; both are kept: resolve with `sitesync work resolve`",
                blocking=True,
            )
        elif decision is Decision.DELETE_REFUSED:
            self._set_copy(conn, wf.id, site, None)
            cid = self._conflict(
                conn,
                wf,
                site,
                "delete-edit",
                held,
                head,
                f"{where}: deleted on {site}, but version {head.number if head else '?'} changed it elsewhere"
                f"{' (locked by ' + locker + ')' if locker else ''}; the changed content is kept and comes back",
                blocking=False,
            )
        if made is not None:
            self._events(
                conn,
                [
                    event(
                        "workfile_version",
                        actor,
                        project_id=project_id,
                        site=site,
                        nbytes=ch.size,
                        message=f"{where} version {made.number} ({made.kind}) on {site}",
                    )
                ],
            )
        return Recorded(ch.root, ch.path, decision.value, made.number if made else None, cid)
