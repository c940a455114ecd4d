"""Client: workfile sync (issue 15): status, sync, conflicts, resolve, history, restore, locks.

Workfiles are artists' mutable working files under a project's work areas (``workfiles.*``
settings), a separate kind from published files. Paths are relative to the project's folder on a
root (``sh010/work/anim/sh010_anim_v012.ma``); ``root`` defaults to the project's first workfile
root. The logic is in ``sitesync/workfiles/`` (causality in ``versions.py``, one sync pass in
``step.py``); the rows in ``state/workfiles*.py``.
"""

from __future__ import annotations

import fnmatch
import platform
import posixpath
import time

from sitesync.errors import ConflictError, InvalidInputError, NotFoundError
from sitesync.facade.base import FacadeBase
from sitesync.facade.common import _user
from sitesync.machine_view import ProjectView
from sitesync.state.workfiles import VersionRow, WorkfileRow
from sitesync.workfiles import records as r
from sitesync.workfiles.records import (
    WorkfileConflict,
    WorkfileLock,
    WorkfileStatus,
    WorkfileVersion,
    WorkResolution,
    WorkSyncResult,
)

KEEP_CHOICES = ("local", "remote", "both")


def _clean_path(path: str) -> str:
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise InvalidInputError("give the workfile's path relative to the project folder, e.g. sh010/work/anim/a.ma")
    text = path.strip().replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise InvalidInputError(f"{path!r} is absolute: give the path relative to the project folder")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidInputError(f"{path!r} leaves the project folder: give a path inside it, without '..'")
    return posixpath.join(*parts)


def _lock(row: object | None) -> WorkfileLock | None:
    if row is None:
        return None
    return WorkfileLock(row.user, row.site, row.machine, row.acquired_at, row.expires_at)  # type: ignore[attr-defined]


class WorkfilesFacade(FacadeBase):
    # ------------------------------------------------------------------ helpers

    def _machine(self) -> str:
        return platform.node() or "unknown"

    def _wf_view(self, project: str) -> tuple[int, ProjectView]:
        pid = self.store.project(project).id
        return pid, self.view().project(project)

    def _here(self, view: ProjectView) -> str:
        return self.site_id if self.site_id in view.workfiles.sites else view.active_site

    def _wf_row(self, project: str, path: str, root: str | None) -> tuple[int, ProjectView, WorkfileRow]:
        pid, view = self._wf_view(project)
        rel = _clean_path(path)
        roots = [root] if root else view.workfiles.roots
        for name in roots:
            row = self.store.workfile(pid, name, rel)
            if row is not None:
                return pid, view, row
        raise NotFoundError(f"no workfile {rel!r} in project {project!r}; see `sitesync work status {project}`")

    @staticmethod
    def _version(v: VersionRow, head: int | None, numbers: dict[int, int], kept: set[str | None]) -> WorkfileVersion:
        return WorkfileVersion(
            number=v.number,
            kind=v.kind,
            parent=numbers.get(v.parent_version_id) if v.parent_version_id is not None else None,
            hash=v.hash,
            size=v.size,
            mtime=v.mtime,
            made_on_site=v.made_on_site,
            made_by_user=v.made_by_user,
            machine=v.machine,
            recorded_at=v.recorded_at,
            kept=v.hash is not None and v.hash in kept,
            current=v.id == head,
        )

    # ------------------------------------------------------------------ reading

    def work_status(self, project: str, path_glob: str | None = None) -> list[WorkfileStatus]:
        """Every tracked workfile of ``project`` (those matching ``path_glob``, an fnmatch pattern on
        the path relative to the project folder), with the version here, on the remote site and on
        every workfile site, and its state from this machine's view: ``in_sync``, ``modified_here``,
        ``newer_elsewhere``, ``syncing``, ``conflict``, ``deleted`` or ``locked_by`` (``lock`` says who)."""
        pid, view = self._wf_view(project)
        rows = [w for w in self.store.workfiles_of(pid) if path_glob is None or fnmatch.fnmatchcase(w.path, path_glob)]
        ids = [w.id for w in rows]
        versions = self.store.workfile_versions(ids)
        copies = self.store.workfile_copies(ids)
        locks = self.store.workfile_locks(ids)
        here, remote, user = self._here(view), view.remote_site, _user()
        now = time.time()
        out = []
        for w in rows:
            by_id = {v.id: v for v in versions[w.id]}
            head = by_id.get(w.head_version_id) if w.head_version_id is not None else None
            held = {site: copy["version_id"] for site, copy in copies[w.id].items()}
            number = {site: (by_id[v].number if v in by_id else None) for site, v in held.items()}
            sites = {site: number.get(site) for site in view.workfiles.sites}
            lock = locks.get(w.id)
            mine = copies[w.id].get(here, {})
            leased = mine.get("lease_owner") is not None and (mine.get("lease_expires_at") or 0) > now

            head_hash = head.hash if head is not None else None
            holds_head = {
                site: head is not None and vid in by_id and by_id[vid].hash == head_hash
                for site, vid in held.items()
                if vid is not None
            }

            if w.in_conflict:
                state = r.CONFLICT
            elif lock is not None and (lock.site, lock.user) != (here, user):
                state = r.LOCKED_BY
            elif head is not None and head.hash is None:
                state = r.DELETED
            elif holds_head.get(here):
                state = r.IN_SYNC if holds_head.get(remote) else r.MODIFIED_HERE
            else:
                state = r.SYNCING if leased else r.NEWER_ELSEWHERE
            out.append(
                WorkfileStatus(
                    root=w.root,
                    path=w.path,
                    state=state,
                    current=head.number if head else None,
                    here=number.get(here),
                    remote=number.get(remote),
                    sites=sites,
                    size=head.size if head else None,
                    made_on_site=head.made_on_site if head else None,
                    made_by_user=head.made_by_user if head else None,
                    deleted=w.deleted,
                    in_conflict=w.in_conflict,
                    lock=_lock(lock),
                    error=mine.get("last_error"),
                )
            )
        return out

    def work_conflicts(self, project: str, *, include_resolved: bool = False) -> list[WorkfileConflict]:
        """The conflicts of ``project``, open ones first (newest first); ``include_resolved`` adds
        the resolved ones with who resolved them and how."""
        pid, _view = self._wf_view(project)
        rows = self.store.workfile_conflicts(pid, include_resolved=include_resolved)
        versions = self.store.workfile_versions(list({c.workfile_id for c, _, _ in rows}))
        number = {v.id: v.number for vs in versions.values() for v in vs}
        out = [
            WorkfileConflict(
                id=c.id,
                root=root,
                path=path,
                kind=c.kind,
                site=c.site,
                local_version=number.get(c.local_version_id) if c.local_version_id else None,
                incoming_version=number.get(c.incoming_version_id) if c.incoming_version_id else None,
                conflict_path=c.conflict_path,
                incoming_path=c.incoming_path,
                detected_at=c.detected_at,
                blocking=c.conflict_path is not None,
                message=c.message or "",
                resolved_at=c.resolved_at,
                resolution=c.resolution,
                resolved_by=c.resolved_by,
            )
            for c, root, path in rows
        ]
        return sorted(out, key=lambda c: c.resolved_at is not None)

    def work_history(self, project: str, path: str, *, root: str | None = None) -> list[WorkfileVersion]:
        """Every version of one workfile, oldest first: who made it where, its parent, whether it
        is still kept (recoverable with ``work_restore``) and which one is current."""
        _pid, _view, w = self._wf_row(project, path, root)
        versions = self.store.workfile_versions([w.id])[w.id]
        numbers = {v.id: v.number for v in versions}
        kept = {v.hash for v in versions if v.kept_at is not None}
        return [self._version(v, w.head_version_id, numbers, kept) for v in versions]

    # ------------------------------------------------------------------ acting

    def work_sync(self, project: str) -> WorkSyncResult:
        """One pass for ``project``: scan this machine's work areas (its own site and every disk
        workfile site it reaches), record what changed as versions (conflicts kept), then run the
        transfers it can (uploads to the remote site, downloads from it, conflict copies, recorded
        deletions) and prune kept versions older than ``workfiles.keep_versions_days``. Refused
        when workfile sync is off for the project."""
        from sitesync.workfiles.step import WorkfileStep

        pid, view = self._wf_view(project)
        if not view.workfiles.enabled:
            raise InvalidInputError(
                f"workfile sync is off for project {project!r}; turn it on with "
                f"`sitesync settings set --project {project} workfiles.enabled true`"
            )
        step = WorkfileStep(self.store, view, pid, self._pool, self.site_id, self.actor, _user(), self._machine())
        return step.run()

    def work_resolve(self, project: str, path: str, keep: str, *, root: str | None = None) -> WorkResolution:
        """Resolve a workfile's open conflicts. ``keep``: ``local`` (the content at the path on this
        machine's site wins), ``remote`` (the other content wins), ``both`` (the current content
        stays at the path and the conflicting one becomes a workfile of its own at its conflict
        name). The losing content is never deleted: it stays in the versions area (and as the
        conflict copies already placed). Run ``work_sync`` (or let the worker) to carry it out."""
        if keep not in KEEP_CHOICES:
            raise InvalidInputError(f"--keep must be local, remote or both, not {keep!r}")
        _pid, view, w = self._wf_row(project, path, root)
        here = self._here(view)
        open_ = [c for c in self.work_conflicts(project) if (c.root, c.path) == (w.root, w.path)]
        if not open_:
            raise ConflictError(f"{w.path} has no open conflict; see `sitesync work conflicts {project}`")
        conflicts = [c for c in open_ if c.blocking]
        if keep == "both":
            winner = "both"
        else:
            mine = any(c.site == here for c in conflicts)  # this site made the conflicting change
            winner = "conflicting" if (keep == "local") == mine else "current"
        _head, made = self.store.resolve_workfile_conflicts(w.id, winner, here, self.actor, _user(), self._machine())
        after = self.store.workfile(w.project_id, w.root, w.path)
        versions = {v.id: v.number for v in self.store.workfile_versions([w.id])[w.id]}
        self.wake()
        return WorkResolution(
            root=w.root,
            path=w.path,
            keep=keep,
            current=versions.get(after.head_version_id) if after and after.head_version_id else None,
            own_workfiles=[p for p, _v in made],
        )

    def work_restore(self, project: str, path: str, version: int, *, root: str | None = None) -> WorkfileVersion:
        """Bring version ``version`` back as the current content: a new version (kind restore) that
        propagates like any edit; refused if that content is no longer kept."""
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InvalidInputError(f"--version must be a version number (1 or more), not {version!r}")
        _pid, view, w = self._wf_row(project, path, root)
        made = self.store.restore_workfile_version(
            w.id, version, self._here(view), self.actor, _user(), self._machine()
        )
        versions = self.store.workfile_versions([w.id])[w.id]
        self.wake()
        kept = {v.hash for v in versions if v.kept_at is not None}
        return self._version(made, made.id, {v.id: v.number for v in versions}, kept)

    def work_lock(self, project: str, path: str, *, root: str | None = None) -> WorkfileLock:
        """Lock a workfile for this user on this machine's site for ``workfiles.lock_hours``; every
        other site sees who holds it, and an edit made elsewhere meanwhile is a conflict at once.
        The path need not be recorded yet (lock before the first save)."""
        pid, view = self._wf_view(project)
        rel = _clean_path(path)
        name = root or view.workfiles.roots[0]
        if name not in view.workfiles.roots:
            raise InvalidInputError(f"root {name!r} holds no work areas; use one of {', '.join(view.workfiles.roots)}")
        lock = self.store.lock_workfile(
            pid, name, rel, self._here(view), _user(), self._machine(), view.workfiles.lock_hours, self.actor
        )
        return WorkfileLock(lock.user, lock.site, lock.machine, lock.acquired_at, lock.expires_at)

    def work_unlock(self, project: str, path: str, *, force: bool = False, root: str | None = None) -> bool:
        """Release this user's lock; ``force`` breaks another's (recorded as an event). Returns
        whether a lock was removed."""
        pid, view = self._wf_view(project)
        rel = _clean_path(path)
        name = root or view.workfiles.roots[0]
        removed = self.store.unlock_workfile(pid, name, rel, self._here(view), _user(), self.actor, force=force)
        return removed is not None


__all__ = ["KEEP_CHOICES", "WorkfilesFacade"]
