"""Client: the Sync Queue dashboard's reads and actions; logic in syncqueue.py."""

from __future__ import annotations

from typing import Any

from sitesync import syncqueue
from sitesync.facade.base import FacadeBase


class DashboardFacade(FacadeBase):
    def sync_queue(self, project: str, **options: Any) -> dict[str, Any]:
        """One page of a project's representations with their state on the active and remote
        site (or ``active_site``/``remote_site``): filters, sort, paging; see ``syncqueue.queue_page``."""
        return syncqueue.queue_page(self, project, **options)

    def sync_queue_detail(self, rep_id: int, *, snapshot: Any = None) -> dict[str, Any]:
        """A representation on every site, and each of its files on every site."""
        return syncqueue.queue_detail(self, rep_id, snapshot)

    def project_states(self, health: Any = None) -> list[dict[str, Any]]:
        """Projects with their state for a dashboard: syncing, paused, disabled, failed counts."""
        return syncqueue.project_states(self, health)

    def history(self, **filters: Any) -> dict[str, Any]:
        """The event history, newest first, filtered by project, representation, kinds, site, text."""
        return syncqueue.history(self, **filters)

    def resync(
        self, rep_id: int, scope: str = "all", *, file_id: int | None = None, site: str | None = None
    ) -> dict[str, Any]:
        """Re-sync on the ``active`` site, the ``remote`` site, ``all`` sites it is wanted on, or
        one ``site``; the whole representation or one file."""
        return syncqueue.resync(self, rep_id, scope, file_id, site)

    def check_site(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Ask the site's provider whether this machine reaches it right now."""
        return syncqueue.check_site(self, name, project)

    def provider_for(self, spec: Any) -> Any:
        """This client's provider instance for a site as one project sees it (``SiteSpec``)."""
        return self._pool.get(spec)

    def pause_list(self) -> list[dict[str, Any]]:
        """Every pause above representation level, with who paused it and when."""
        return syncqueue.pause_list(self)

    def metrics(self, snapshot: Any = None, health: Any = None) -> dict[str, Any]:
        """What monitoring scrapes: files per project, site and status, bytes verified per site,
        pauses, and this process's worker (counters since it started, sites it cannot reach)."""
        return syncqueue.metrics(self, snapshot, health)

    def live_progress(self, snapshot: Any = None) -> dict[str, Any]:
        """A running worker's progress snapshot in API form, with a marker that changes on news."""
        return syncqueue.live_progress(self, snapshot)
