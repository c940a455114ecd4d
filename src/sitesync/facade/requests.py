"""Client: what people ask for (download, upload, remove, re-sync, priority, pause) and the engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sitesync.engine.liveness import reclaim_dead_leases
from sitesync.engine.planner import WORKER_PAUSE
from sitesync.engine.wake import WakeListener
from sitesync.errors import (
    InvalidInputError,
    NotFoundError,
)
from sitesync.facade.base import FacadeBase
from sitesync.facade.common import _check_priority, check_count
from sitesync.machine_view import ProjectView
from sitesync.settings.models import STUDIO
from sitesync.state.records import RepresentationRow
from sitesync.state.store import ALL

if TYPE_CHECKING:
    # the engine is imported by the methods that run it: read-only commands never load it
    from sitesync.engine.removal import RemoveResult
    from sitesync.engine.worker import Worker


class RequestsFacade(FacadeBase):
    def download(
        self, rep_id: int, site: str | None = None, *, priority: int | None = None, with_links: bool = False
    ) -> dict[str, Any]:
        """Want the representation on the active site (or ``site``); ``with_links``: and every
        representation it references, transitively (reported under ``links``)."""
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.active_site)
        if not with_links:
            return self._want(rep, view, target, priority)
        first, *rest = [self._want(r, v, target, priority) for r, v in self._closure(rep, view, target)]
        first["links"] = rest
        return first

    def _closure(
        self, rep: RepresentationRow, view: ProjectView, target: str, *, require_sync: bool = True
    ) -> list[tuple[Any, ProjectView]]:
        """The representation and everything it references, each with its project's view, checked
        up front so that a problem with any of them refuses the whole request."""
        out = []
        for i in self.store.link_closure(rep.id):
            r, v = (rep, view) if i == rep.id else self._rep_view(i)
            self._target(v, target, target)
            if require_sync and not v.sync_enabled:
                raise InvalidInputError(
                    f"site sync is off for project {v.name!r} (representation {i} is linked); nothing was requested"
                )
            out.append((r, v))
        return out

    def upload(self, rep_id: int, site: str | None = None, *, priority: int | None = None) -> dict[str, Any]:
        """Want the representation on the remote site (or ``site``)."""
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.remote_site)
        return self._want(rep, view, target, priority)

    def _want(self, rep: RepresentationRow, view: ProjectView, target: str, priority: int | None) -> dict[str, Any]:
        if not view.sync_enabled:
            raise InvalidInputError(
                f"site sync is off for project {view.name!r}; turn it on with `sitesync settings set enabled true`"
                + ("" if view.settings.enabled else f" --project {view.name}")
            )
        if priority is not None:
            _check_priority(priority)
        counts = self.store.want(
            rep.id, target, self.actor, priority=priority, alternatives=view.site(target).alternatives
        )
        self.wake()
        return {"representation_id": rep.id, "site": target, **counts}

    def remove(self, rep_id: int, site: str | None = None) -> RemoveResult:
        """Delete the site's copy of the representation: the guarded removal (``engine/removal.py``:
        the storage proven to be the site's, ``min_copies`` in the catalog and at the other copies'
        storage, each file checked to be the content to remove just before it is deleted)."""
        rep, view = self._rep_view(rep_id)
        target = self._target(view, site, view.active_site)
        reclaim_dead_leases(self.store)  # a killed worker of this machine holds nothing any more
        return self.removal(view, rep.project_id).remove(rep.id, target)

    def reset(self, rep_id: int, site: str | None = None, *, file_id: int | None = None) -> dict[str, Any]:
        """Re-sync: clear attempts and errors and queue again. Without ``site``: every site where
        the representation is not yet present; with ``site``: that site, verified copies included."""
        if file_id is not None:
            check_count(file_id, "file id")
        rep, view = self._rep_view(rep_id)
        if site is None:
            sites = list(self.store.representation_sites(rep.id)) or [view.active_site, view.remote_site]
            result = self.store.reset(rep.id, sites, self.actor, file_id=file_id)
        else:
            target = self._target(view, site, view.active_site)
            sites = [target]
            result = self.store.reset(rep.id, sites, self.actor, include_present=True, file_id=file_id)
        self.wake()
        return {"representation_id": rep.id, "sites": sites, **result}

    def set_priority(self, rep_id: int, priority: int, site: str | None = None) -> dict[str, Any]:
        _check_priority(priority)
        rep, view = self._rep_view(rep_id)
        target = None if site is None else self._target(view, site, view.active_site)
        n = self.store.set_priority(rep.id, priority, self.actor, target)
        self.wake()
        return {"representation_id": rep.id, "priority": priority, "sites": n}

    def pause(
        self,
        *,
        project: str | None = None,
        site: str | None = None,
        representation: int | None = None,
        worker: bool = False,
    ) -> dict[str, Any]:
        """Pause a representation (x site), a project, a site, this machine's workers
        (``worker=True``) or, with nothing given, all syncing everywhere. Persistent."""
        result = self._pause(True, project, site, representation, worker)
        self.wake()  # running workers read the pauses again at once instead of at their next refresh
        return result

    def resume(
        self,
        *,
        project: str | None = None,
        site: str | None = None,
        representation: int | None = None,
        worker: bool = False,
    ) -> dict[str, Any]:
        result = self._pause(False, project, site, representation, worker)
        self.wake()
        return result

    def _pause(
        self, paused: bool, project: str | None, site: str | None, representation: int | None, worker: bool = False
    ) -> dict[str, Any]:
        if worker:
            if project is not None or site is not None or representation is not None:
                raise InvalidInputError("--worker pauses this machine's workers as a whole; give it alone")
            changed = self.store.set_pause(WORKER_PAUSE, self.site_id, paused, self.actor)
            return {"scope": "worker", "site_id": self.site_id, "paused": paused, "changed": changed}
        view = self.view()
        site_name = view.normalize_site(site) if site else None
        if site_name is not None and site_name not in (STUDIO, self.site_id) and site_name not in view.system.sites:
            raise NotFoundError(f"unknown site {site!r}; see `sitesync site list`")
        if representation is not None:
            if project is not None:
                raise InvalidInputError("give --representation or --project, not both")
            rep, _pv = self._rep_view(representation)
            n = self.store.set_representation_paused(rep.id, paused, self.actor, site_name)
            if n == 0:
                where = f"on site {site_name!r}" if site_name else "on any site"
                raise NotFoundError(f"representation {rep.id} is not wanted {where}; nothing to pause")
            return {
                "scope": "representation",
                "representation_id": rep.id,
                "site": site_name,
                "paused": paused,
                "sites": n,
            }
        if project is not None:
            self.store.project(project)
        changed = self.store.set_pause(project or ALL, site_name or ALL, paused, self.actor)
        scope = (
            "everything"
            if not project and not site_name
            else "project"
            if not site_name
            else "site"
            if not project
            else "project site"
        )
        return {"scope": scope, "project": project, "site": site_name, "paused": paused, "changed": changed}

    def worker(
        self,
        *,
        once: bool = False,
        projects: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        concurrency: int | None = None,
        lease_seconds: float = 60.0,
        batch_size: int = 256,
        listen: bool = True,
    ) -> Worker:
        """A worker bound to this client's database and machine; call ``run()`` on it."""
        from sitesync.engine.worker import Worker, WorkerOptions

        for p in projects or ():
            self.store.project(p)
        view = self.view()
        options = WorkerOptions(
            concurrency=concurrency or view.local.concurrency,
            once=once,
            projects=list(projects) if projects else None,
            targets=[view.normalize_site(t) for t in targets] if targets else None,
            lease_seconds=lease_seconds,
            batch_size=max(1, batch_size),
        )
        wake = WakeListener(self.paths.wake_dir) if listen else None
        notifications = self.store.notification_relay(wake.set) if wake is not None else None
        return Worker(self.store, self.view, options, wake=wake, notifications=notifications, steps=self.worker_steps)

    def sync_once(self, project: str | None = None, **kwargs: Any) -> Any:
        """Run the engine until no due work is left (what ``sitesync sync --once`` does)."""
        worker = self.worker(once=True, projects=[project] if project else None, listen=False, **kwargs)
        return worker.run()
