"""Client: what a studio coordinator looks at first. The overview strip above the Sync Queue
(representations per state, transfers in progress with bytes done and an ETA), the Sites view
with numbers (files and bytes per state, last transfer, last error, reachability and back-off,
free space), and the ids a bulk action on "all matching" acts on."""

from __future__ import annotations

import time
from collections.abc import Mapping, Set
from typing import Any

from sitesync.facade.dashboard import DashboardFacade
from sitesync.providers.base import CAP_USAGE, Provider, Usage, effective_capabilities
from sitesync.providers.registry import provider_class
from sitesync.settings.models import STUDIO
from sitesync.state.listing import SITE_STATUSES
from sitesync.state.store import ALL

# A bulk action on "all matching" acts on at most this many representations in one request.
BULK_LIMIT = 2000
_BULK_PAGE = 500

# (project, site) -> (why the worker could not reach it, when it tries again)
Backoff = Mapping[tuple[str, str], tuple[str, float]]


def _usage(provider: Provider) -> Usage | None:
    """The site's space, where its provider can tell and the site does not switch that off."""
    return provider.usage() if CAP_USAGE in provider.capabilities else None


def state_order(counts: Mapping[str, int]) -> list[str]:
    """The known states in the order needing attention first, then any state a newer server
    reports that this list does not know yet (so it shows without a change here)."""
    known = [x for x in SITE_STATUSES if x != "none"]
    return known + sorted(set(counts) - set(known))


class OverviewFacade(DashboardFacade):
    def queue_overview(self, project: str, *, snapshot: Any = None) -> dict[str, Any]:
        """Representations of ``project`` per overall state (``none``: no copy or request
        anywhere), and the transfers in progress: files, bytes done of their total, the worker's
        average rate and the ETA at that rate (when a worker runs in this process)."""
        prow = self.store.project(project)
        total, counts = self.store.representation_status_counts(prow.id)
        states = [{"state": name, "count": counts.get(name, 0)} for name in state_order(counts)]
        states.append({"state": "none", "count": max(0, total - sum(counts.values()))})
        sites = list(self.project_view(project).sites)
        live = self._in_flight_by_pair(snapshot)
        files = done = size = 0
        pairs = self.store.transfers_in_progress(prow.id, sites)
        for pair in pairs:
            in_flight = int(pair["bytes_in_flight"])
            running = live.get((int(pair["representation_id"]), str(pair["site"])))
            if running:
                in_flight = max(in_flight, sum(running.values()))
            files += int(pair["files_in_progress"])
            done += min(int(pair["total_size"]), int(pair["bytes_present"]) + in_flight)
            size += int(pair["total_size"])
        rate = None
        if snapshot is not None and snapshot.bytes_done:
            rate = snapshot.bytes_done / max(time.time() - snapshot.started, 1e-6)
        return {
            "project": project,
            "total": total,
            "states": states,
            "transfers": {
                "representations": len(pairs),
                "files": files,
                "bytes_done": done,
                "bytes_total": size,
                "bytes_per_second": rate,
                "eta_seconds": (size - done) / rate if rate and size > done else None,
            },
        }

    def sites_overview(
        self,
        project: str,
        *,
        reached: Set[tuple[str, str]] | None = None,
        backoff: Backoff | None = None,
    ) -> list[dict[str, Any]]:
        """Every site of ``project`` as this machine sees it, with numbers: files and bytes per
        state, the latest transfer to it and the latest failure, whether the worker in this
        process reached it (``reached``: the (project, site) pairs it did; None without a worker)
        or backs off (and until when), and whether it can tell its free space."""
        prow = self.store.project(project)
        view = self.project_view(project)
        pauses = self.store.pauses()
        summaries = {x.site: x for x in self.store.project_site_summaries(prow.id)}
        waiting = self.store.waiting_bytes_by_site(prow.id)
        latest = self.store.latest_events_by_site(prow.id, ("transfer", "failure"))
        now = time.time()
        out = []
        for name, spec in sorted(view.sites.items(), key=lambda item: (item[0] != STUDIO, item[0])):
            summary = summaries.get(name)
            counts = summary.counts if summary else {}
            bytes_by_status = waiting.get(name, {})
            roles = [
                role
                for role, applies in (
                    ("active", name == view.active_site),
                    ("remote", name == view.remote_site),
                    ("always", name in view.always_accessible_on),
                )
                if applies
            ]
            transfer, failure = latest.get((name, "transfer")), latest.get((name, "failure"))
            backed_off = (backoff or {}).get((project, name))
            health: dict[str, Any]
            if not spec.reachable:
                health = {"state": "elsewhere", "reason": spec.reason, "until": None}
            elif backed_off is not None:
                reason, until = backed_off
                health = {"state": "backed_off", "reason": reason, "until": until if until > now else now}
            elif reached is not None and (project, name) in reached:
                health = {"state": "reachable", "reason": None, "until": None}
            elif reached is None:
                health = {"state": "unknown", "reason": "no worker runs in this server", "until": None}
            else:
                why = "the project does not use it here" if not spec.enabled else "not needed by the worker yet"
                health = {"state": "unknown", "reason": why, "until": None}
            try:
                capabilities = sorted(effective_capabilities(provider_class(spec.provider), spec.options))
            except Exception:  # a provider missing here: the site is shown, its capabilities are not
                capabilities = []
            out.append(
                {
                    "name": name,
                    "provider": spec.provider,
                    "this_machine": name == self.site_id,
                    "roles": roles,
                    "enabled": spec.enabled,
                    "paused": bool({(ALL, name), (project, name)} & pauses),
                    "health": health,
                    "files": {x: counts.get(x, 0) for x in ("present", "queued", "in_progress", "failed", "removing")},
                    "bytes": {
                        "present": summary.bytes_present if summary else 0,
                        **{x: bytes_by_status.get(x, (0, 0))[1] for x in ("queued", "in_progress", "failed")},
                    },
                    "last_transfer": _event_brief(transfer),
                    "last_error": _event_brief(failure),
                    "capabilities": capabilities,
                    "usage_known": CAP_USAGE in capabilities and spec.reachable,
                }
            )
        return out

    def site_usage(self, name: str, project: str | None = None) -> dict[str, Any]:
        """Free and total bytes of a site's storage where its provider can tell (asked now, for
        at most a few seconds)."""
        site, available, usage, reason = self._ask_provider(name, project, _usage)
        known = isinstance(usage, Usage)
        return {
            "site": site,
            "available": available,
            "free": usage.free if isinstance(usage, Usage) else None,
            "total": usage.total if isinstance(usage, Usage) else None,
            "known": known,
            "reason": reason if available is not True else None if known else "the provider cannot tell",
        }

    def sync_queue_ids(self, project: str, *, limit: int = BULK_LIMIT, **filters: Any) -> tuple[int, list[int]]:
        """How many representations match the Sync Queue ``filters`` (the names ``sync_queue``
        takes), and the first ``limit`` of their ids (by id): what "all matching" acts on."""
        ids: list[int] = []
        total = 0
        while len(ids) < limit:
            page = self.sync_queue(
                project,
                **filters,
                sort="id",
                order="asc",
                offset=len(ids),
                limit=min(_BULK_PAGE, limit - len(ids)),
            )
            total = page.total
            ids += [item.id for item in page.items]
            if len(page.items) < page.limit or len(ids) >= total:
                break
        return total, ids


def _event_brief(event: Any) -> dict[str, Any] | None:
    if event is None:
        return None
    return {
        "at": event.at,
        "representation_id": event.representation_id,
        "source_site": event.source_site,
        "bytes": event.bytes,
        "message": event.message,
    }
