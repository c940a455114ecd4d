"""Client: the Sync Queue dashboard's reads and actions: the filtered, sorted, paged list of a
project's representations with their state on the active and remote site, a representation's files
on every site, projects with their activity, the event history, re-sync by scope, site checks,
pauses, monitoring metrics and live progress from a running worker. The REST API and the dashboard
show what these return; the rows' shapes are in ``facade/dashboard_rows.py``."""

from __future__ import annotations

import concurrent.futures as cf
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sitesync.engine.planner import WORKER_PAUSE, worker_paused
from sitesync.errors import InvalidInputError, SitesyncError
from sitesync.facade.catalog import CatalogFacade
from sitesync.facade.dashboard_rows import (
    event_dict,
    parse_statuses,
    parse_version,
    rep_fields,
    representation_label,
    site_side,
)
from sitesync.machine_view import SiteSpec
from sitesync.settings.models import STUDIO
from sitesync.state.listing import SORT_KEYS, QueueFilter
from sitesync.state.store import ALL

if TYPE_CHECKING:
    # the REST models are imported by the one method that returns them (``queue_page``)
    from sitesync.api.models import QueuePageOut
    from sitesync.engine.progress import ProgressSnapshot
    from sitesync.providers.base import Provider

T = TypeVar("T")
MAX_PAGE = 500
SITE_CHECK_SECONDS = 10.0
RESYNC_SCOPES = ("active", "remote", "all")


class DashboardFacade(CatalogFacade):
    def provider_for(self, spec: SiteSpec) -> Provider:
        """This client's provider instance for a site as one project sees it."""
        return self._pool.get(spec)

    def _in_flight_by_pair(self, snapshot: ProgressSnapshot | None) -> dict[tuple[int, str], dict[int, int]]:
        """(representation id, site) -> {file id: bytes done} of the transfers running right now."""
        if snapshot is None or not snapshot.in_flight:
            return {}
        done = {item.replica_id: item.done for item in snapshot.in_flight}
        out: dict[tuple[int, str], dict[int, int]] = {}
        for replica_id, (rep_id, site, file_id) in self.store.replica_owners(list(done)).items():
            out.setdefault((rep_id, site), {})[file_id] = done[replica_id]
        return out

    def live_progress(self, snapshot: ProgressSnapshot | None = None) -> dict[str, Any]:
        """What a worker in this process is doing, plus a marker that changes whenever anything was
        recorded (so a dashboard refreshes only when there is news)."""
        event_id, settings_version = self.store.change_marker()
        out: dict[str, Any] = {"marker": f"{event_id}.{settings_version}", "last_event_id": event_id, "worker": None}
        if snapshot is None:
            return out
        owners = self.store.replica_owners([x.replica_id for x in snapshot.in_flight]) if snapshot.in_flight else {}
        elapsed = max(time.time() - snapshot.started, 1e-6)
        out["marker"] += f".{snapshot.files_claimed}.{snapshot.files_done}.{snapshot.files_failed}"
        out["worker"] = {
            "files_done": snapshot.files_done,
            "files_failed": snapshot.files_failed,
            "files_claimed": snapshot.files_claimed,
            "bytes_done": snapshot.bytes_done,
            "bytes_claimed": snapshot.bytes_claimed,
            "started_at": snapshot.started,
            "bytes_per_second": snapshot.bytes_done / elapsed,
            "transfers": [
                {
                    "representation_id": owners.get(item.replica_id, (None, None, None))[0],
                    "file_id": owners.get(item.replica_id, (None, None, None))[2],
                    "path": item.path,
                    "site": item.site,
                    "source_site": item.source,
                    "size": item.size,
                    "done": item.done,
                    "progress": round(item.done / item.size, 4) if item.size else 1.0,
                    "started_at": item.started,
                }
                for item in sorted(snapshot.in_flight, key=lambda x: x.started)
            ],
        }
        return out

    def sync_queue(
        self,
        project: str,
        *,
        text: str | None = None,
        folder: str | None = None,
        product: str | None = None,
        name: str | None = None,
        version: str | int | None = None,
        active_status: str | Sequence[str] | None = None,
        remote_status: str | Sequence[str] | None = None,
        status: str | Sequence[str] | None = None,
        active_site: str | None = None,
        remote_site: str | None = None,
        sort: str = "folder",
        order: str = "asc",
        offset: int = 0,
        limit: int = 50,
        snapshot: ProgressSnapshot | None = None,
    ) -> QueuePageOut:
        """One page of a project's representations with their state on the active and remote
        site (or ``active_site``/``remote_site``): filters, sort, paging."""
        prow = self.store.project(project)
        machine = self.view()
        view = machine.project(project)
        active = view.active_site if not active_site else machine.normalize_site(active_site)
        remote = view.remote_site if not remote_site else machine.normalize_site(remote_site)
        view.site(active)
        view.site(remote)
        if sort not in SORT_KEYS:
            raise InvalidInputError(f"invalid sort {sort!r}: use one of {', '.join(SORT_KEYS)}")
        if order not in ("asc", "desc"):
            raise InvalidInputError(f"invalid order {order!r}: use asc or desc")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"invalid limit {limit}: use 1 to {MAX_PAGE}")
        if offset < 0:
            raise InvalidInputError(f"invalid offset {offset}: use 0 or more")
        flt = QueueFilter(
            text=(text or "").strip() or None,
            folder=folder or None,
            product=product or None,
            name=name or None,
            version=parse_version(version),
            active_status=parse_statuses(active_status, "active status"),
            remote_status=parse_statuses(remote_status, "remote status"),
            status=parse_statuses(status, "status"),
        )
        page = self.store.queue_page(
            prow.id, active, remote, flt, sort=sort, descending=order == "desc", offset=offset, limit=limit
        )
        live = self._in_flight_by_pair(snapshot)
        items = []
        for rep in page.rows:
            item = rep_fields(rep, project)
            item["active"] = site_side(active, rep["active"], rep, live.get((rep["id"], active)))
            item["remote"] = site_side(remote, rep["remote"], rep, live.get((rep["id"], remote)))
            item["status"] = rep["overall_status"]
            item["status_site"] = rep["overall_site"]
            item["priority"] = rep["overall_priority"]
            items.append(item)
        pauses = self.store.pauses()
        from sitesync.api.models import QueuePageOut

        # the REST API's model of a page: one documented shape for the API, the dashboard and Python
        return QueuePageOut.model_validate(
            {
                "project": project,
                "active_site": active,
                "remote_site": remote,
                "sort": sort,
                "order": order,
                "offset": offset,
                "limit": limit,
                "total": page.total,
                "paused": {
                    "project": (project, ALL) in pauses or (ALL, ALL) in pauses,
                    "active_site": bool({(ALL, active), (project, active)} & pauses),
                    "remote_site": bool({(ALL, remote), (project, remote)} & pauses),
                },
                "items": items,
            }
        )

    def sync_queue_detail(self, rep_id: int, *, snapshot: ProgressSnapshot | None = None) -> dict[str, Any]:
        """A representation on every site, and each of its files on every site."""
        detail = self.representation_detail(rep_id)
        rep = self.representation(rep_id)
        try:
            view = self.project_view(rep.project)
            active, remote = view.active_site, view.remote_site
        except SitesyncError:
            active = remote = STUDIO
        live = self._in_flight_by_pair(snapshot)
        states = self.store.site_states_of(rep.id)
        requests = detail["sites"]
        rep_dict = {
            "id": rep.id,
            "project_id": rep.project_id,
            "folder": rep.folder,
            "product": rep.product,
            "version": rep.version,
            "name": rep.name,
            "file_count": rep.file_count,
            "total_size": rep.total_size,
            "created_at": rep.created_at,
            "updated_at": rep.updated_at,
            "published_by": rep.published_by,
        }
        sites = []
        for site in sorted(set(states) | set(requests) | {active, remote}):
            side = site_side(site, states.get(site), rep_dict, live.get((rep.id, site)))
            request = requests.get(site)
            side.update(
                role="active" if site == active else "remote" if site == remote else None,
                wanted=request is not None,
                paused=bool(request and request["paused"]),
                requested_by=request["requested_by"] if request else None,
            )
            if request is not None:
                side["priority"] = request["priority"]
            sites.append(side)
        files = []
        for f in detail["files"]:
            replicas = []
            for r in f["replicas"]:
                progress = r["progress"]
                done = live.get((rep.id, r["site"]), {}).get(f["id"])
                if r["status"] == "in_progress" and done is not None and f["size"]:
                    progress = done / f["size"]
                replicas.append({**r, "progress": round(min(1.0, progress), 4)})
            files.append({**f, "replicas": replicas})
        events = self.store.events_page(representation_id=rep.id, limit=20)
        return {
            "representation": rep_fields(rep_dict, rep.project),
            "active_site": active,
            "remote_site": remote,
            "sites": sites,
            "files": files,
            "events": [
                event_dict(e, {rep.project_id: rep.project}, {rep.id: representation_label(rep)}) for e in events
            ],
        }

    def project_states(self, health: Mapping[tuple[str, str], str] | None = None) -> list[dict[str, Any]]:
        """Every project with what the dashboard's project list shows: enabled, paused, syncing, and
        how many representations are failed, moving or waiting (from the summaries: no replica scan)."""
        activity = self.store.project_activity()
        pauses = self.store.pauses()
        view = self.view()
        machine_paused = worker_paused(pauses, self.site_id)
        out = []
        for project in self.store.projects():
            counts = activity.get(project.id, {})
            paused = (project.name, ALL) in pauses or (ALL, ALL) in pauses
            entry: dict[str, Any] = {"enabled": False, "sync_enabled": False, "active_site": None, "remote_site": None}
            error = None
            try:
                pv = view.project(project.name)
                entry.update(
                    enabled=pv.settings.enabled,
                    sync_enabled=pv.sync_enabled,
                    active_site=pv.active_site,
                    remote_site=pv.remote_site,
                )
            except SitesyncError as exc:
                error = str(exc)
            waiting = counts.get("queued", 0) + counts.get("in_progress", 0)
            state = (
                "error"
                if error
                else "disabled"
                if not entry["sync_enabled"]
                else "paused"
                if paused or machine_paused
                else "failed"
                if counts.get("failed") or counts.get("lost")
                else "syncing"
                if waiting
                else "idle"
            )
            unavailable = sorted({site for (pname, site) in (health or {}) if pname == project.name})
            out.append(
                {
                    "name": project.name,
                    **entry,
                    "paused": paused,
                    "state": state,
                    "failed": counts.get("failed", 0),
                    "lost": counts.get("lost", 0),
                    "no_source": counts.get("no_source", 0),
                    "in_progress": counts.get("in_progress", 0),
                    "queued": counts.get("queued", 0),
                    "counts": counts,
                    "unavailable_sites": unavailable,
                    "error": error,
                }
            )
        return out

    def history(
        self,
        *,
        project: str | None = None,
        representation: int | None = None,
        kinds: Sequence[str] | str | None = None,
        site: str | None = None,
        text: str | None = None,
        before_id: int | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """The event history, newest first, filtered by project, representation, kinds, site, text."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInputError(f"invalid limit {limit}: use 1 to {MAX_PAGE}")
        project_id = self.store.project(project).id if project else None
        if representation is not None:
            representation = self.representation(representation).id
        kind_list = [k.strip() for k in (kinds.split(",") if isinstance(kinds, str) else kinds or ()) if k.strip()]
        rows = self.store.events_page(
            project_id=project_id,
            representation_id=representation,
            kinds=kind_list,
            site=self.view().normalize_site(site) if site else None,
            text=text or None,
            before_id=before_id,
            after_id=after_id,
            limit=limit,
        )
        names = {p.id: p.name for p in self.store.projects()}
        reps = self.store.representations_by_ids(sorted({e.representation_id for e in rows if e.representation_id}))
        labels = {rep_id: representation_label(rep) for rep_id, rep in reps.items()}
        return {"events": [event_dict(e, names, labels) for e in rows], "last_id": rows[0].id if rows else after_id}

    def check_site(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Ask the site's provider whether this machine reaches it right now (bounded in time)."""
        site, available, _value, reason = self._ask_provider(name, project, lambda provider: provider.check())
        return {"site": site, "available": available, "reason": reason}

    def _ask_provider(
        self, name: str, project: str | None, call: Callable[[Provider], T]
    ) -> tuple[str, bool | None, T | None, str | None]:
        """Run ``call`` on the site's provider as this machine sees it for ``project`` (or the first
        project that uses it), for at most ``SITE_CHECK_SECONDS``. Returns (site, available, what the
        call returned, why not): available is None when no provider can be asked from here."""
        info = self.site(name, project, records=False)
        site = info["name"]
        view = self.view()
        projects = [project] if project else [p.name for p in self.store.projects()]
        spec = None
        for pname in projects:
            try:
                spec = view.project(pname).sites.get(site)
            except SitesyncError:
                continue
            if spec is not None:
                break
        if spec is None:
            return site, None, None, "no project uses this site on this machine"
        if not spec.reachable:
            return site, None, None, spec.reason or "not reachable from this machine"
        pool = cf.ThreadPoolExecutor(1, thread_name_prefix="sitesync-check")
        try:
            future = pool.submit(lambda: call(self.provider_for(spec)))
            value = future.result(timeout=SITE_CHECK_SECONDS)
        except cf.TimeoutError:
            return site, False, None, f"no answer within {SITE_CHECK_SECONDS:.0f} s"
        except SitesyncError as exc:
            return site, False, None, str(exc)
        except Exception as exc:  # a provider bug is a failed check, not a server error
            return site, False, None, f"{type(exc).__name__}: {exc}"
        finally:
            pool.shutdown(wait=False)
        return site, True, value, None

    def resync(
        self, rep_id: int, scope: str = "all", *, file_id: int | None = None, site: str | None = None
    ) -> dict[str, Any]:
        """Re-sync on the ``active`` site, the ``remote`` site, ``all`` sites it is wanted on, or
        one ``site``; the whole representation or one file."""
        if scope not in RESYNC_SCOPES:
            raise InvalidInputError(f"invalid scope {scope!r}: use active, remote or all")
        rep = self.representation(rep_id)
        if file_id is not None and file_id not in {f.id for f in self.store.files_of(rep.id)}:
            raise InvalidInputError(f"file {file_id} is not a file of representation {rep.id}")
        if site is not None:
            return self.reset(rep.id, site, file_id=file_id)
        if scope == "all":
            return self.reset(rep.id, file_id=file_id)
        view = self.project_view(rep.project)
        return self.reset(rep.id, view.active_site if scope == "active" else view.remote_site, file_id=file_id)

    def metrics(
        self, snapshot: ProgressSnapshot | None = None, health: Mapping[tuple[str, str], str] | None = None
    ) -> dict[str, Any]:
        """What monitoring scrapes: files per project, site and status, bytes verified per site,
        pauses, and this process's worker (counters since it started, sites it cannot reach); plain
        data, the API writes it in Prometheus form."""
        worker = None
        if snapshot is not None:
            worker = {
                "files_transferred": snapshot.files_done,
                "failed_attempts": snapshot.files_failed,
                "bytes_transferred": snapshot.bytes_done - sum(x.done for x in snapshot.in_flight),
                "transfers_running": len(snapshot.in_flight),
                "bytes_in_flight": sum(x.done for x in snapshot.in_flight),
                "started_at": snapshot.started,
            }
        return {
            "site_id": self.site_id,
            "sites": self.store.site_file_counts(),
            "pauses": self.pause_list(),
            "worker_paused": worker_paused(self.store.pauses(), self.site_id),
            "worker": worker,
            "unreachable": sorted(health or {}),
        }

    def pause_list(self) -> list[dict[str, Any]]:
        """Every pause above representation level, with who paused it and when."""
        out = []
        for row in self.store.pause_rows():
            project, site = row["project"], row["site"]
            if project == WORKER_PAUSE:
                scope = "worker"
            elif project == ALL and site == ALL:
                scope = "everything"
            elif site == ALL:
                scope = "project"
            elif project == ALL:
                scope = "site"
            else:
                scope = "project site"
            out.append(
                {
                    "scope": scope,
                    "project": None if project in (ALL, WORKER_PAUSE) else project,
                    "site": None if site == ALL else site,
                    "paused_at": row["paused_at"],
                    "paused_by": row["paused_by"],
                }
            )
        return out
