"""``sync --dry-run`` and ``GET /plan``: what this machine's worker would transfer now, from which
source, to which site, in which order, with bytes; and what it would skip, and why.

Read only: the plan reads the catalog through ``state/plan.py`` and decides with the pure
``engine/dryrun.py`` (over the planner the worker itself uses). It never touches storage: which
sites cannot be reached is what a worker found (the live worker of ``sitesync serve``, else the
last availability events this machine's workers recorded), not a fresh probe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sitesync.engine import dryrun
from sitesync.errors import SitesyncError
from sitesync.machine_view import MachineView
from sitesync.state.plan import OpenReplicas
from sitesync.state.records import ProjectRow
from sitesync.state.store import StateStore

Unavailable = Mapping[tuple[str, str], str]  # (project, site) -> why the worker could not reach it


def recorded_unavailable(store: StateStore, site_id: str, projects: Sequence[str]) -> dict[tuple[str, str], str]:
    """Sites this machine's workers last found unreachable (their latest availability event says
    so), as the worker's back-off map would hold them."""
    latest: dict[str, Any] = {}
    for event in store.site_health_events(f"{site_id}/", ("site_unavailable", "site_available")):
        if event.site and event.site not in latest:
            latest[event.site] = event
    out: dict[tuple[str, str], str] = {}
    for site, event in latest.items():
        if event.kind != "site_unavailable":
            continue
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(event.at))
        reason = f"not reachable when this machine's worker last tried (since {since}): {event.message or '-'}"
        for project in projects:
            out[(project, site)] = reason
    return out


def build_plan(
    store: StateStore,
    view: MachineView,
    projects: Sequence[ProjectRow],
    *,
    targets: Sequence[str] | None,
    unavailable: Unavailable,
    limit: int,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    pauses = store.pauses()
    open_rows = store.open_replicas([p.id for p in projects], now)
    transfers: list[dict[str, Any]] = []
    queues: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for prow in projects:
        rows = [r for r in open_rows if r.project_id == prow.id]
        try:
            pv = view.project(prow.name)
        except SitesyncError as exc:
            for row in rows:
                _skip(skipped, prow.name, row.site, "settings_error", str(exc), row.files, row.bytes)
            continue
        down = {site: why for (project, site), why in unavailable.items() if project == prow.name}
        verdicts = dryrun.queue_verdicts(pv, pauses, down, view.site_id, targets)
        known = {v.site for v in verdicts}
        verdicts += [dryrun.foreign_verdict(prow.name, s) for s in sorted({r.site for r in rows} - known)]
        for verdict in verdicts:
            site_rows = [r for r in rows if r.site == verdict.site]
            if not site_rows:
                continue
            if verdict.skip is None:
                _served_queue(store, pv, prow, verdict, site_rows, now, limit, transfers, queues, skipped)
            else:
                _other_states(skipped, prow.name, verdict.site, site_rows, queued_reason=verdict)
    for i, item in enumerate(transfers, 1):
        item["order"] = i
    return {
        "site_id": view.site_id,
        "generated_at": now,
        "transfers": transfers,
        "queues": queues,
        "skipped": skipped,
        "totals": {
            "files": sum(q["files"] for q in queues),
            "bytes": sum(q["bytes"] for q in queues),
            "skipped_files": sum(x["files"] for x in skipped),
            "skipped_bytes": sum(x["bytes"] for x in skipped),
        },
        "limit_per_queue": limit,
        "truncated": any(q["files"] > q["listed"] for q in queues),
    }


def _skip(out: list[dict[str, Any]], project: str, site: str, reason: str, detail: str, files: int, size: int) -> None:
    if files:
        out.append(
            {"project": project, "site": site, "reason": reason, "detail": detail, "files": files, "bytes": size}
        )


def _served_queue(
    store: StateStore,
    pv: Any,
    prow: ProjectRow,
    verdict: dryrun.QueueVerdict,
    rows: list[OpenReplicas],
    now: float,
    limit: int,
    transfers: list[dict[str, Any]],
    queues: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
) -> None:
    head, files, size = store.queue_head(prow.id, verdict.site, verdict.sources, now, limit)
    for f in head:
        transfers.append(
            {
                "project": prow.name,
                "representation_id": f.representation_id,
                "file_id": f.file_id,
                "path": f.path,
                "size": f.size,
                "priority": f.priority,
                "attempts": f.attempts,
                "source": dryrun.file_source(pv, verdict.site, f.holders, verdict.sources),
                "target": verdict.site,
            }
        )
    if files:
        queues.append(
            {
                "project": prow.name,
                "target": verdict.site,
                "sources": list(verdict.sources),
                "files": files,
                "bytes": size,
                "listed": len(head),
            }
        )
    without = store.queue_without_source(prow.id, verdict.site, verdict.sources, now)
    if "unusable" in without:
        n, b = without["unusable"]
        detail = "the only verified copies are on sites not usable from here now (" + ", ".join(
            sorted(set(pv.sites) - set(verdict.sources) - {verdict.site})
        )
        _skip(skipped, prow.name, verdict.site, dryrun.NO_SOURCE, detail + ")", n, b)
    if "nowhere" in without:
        n, b = without["nowhere"]
        _skip(
            skipped,
            prow.name,
            verdict.site,
            dryrun.NO_SOURCE,
            "no site holds a verified copy any more; restore it (`sitesync validate SITE`) or publish again",
            n,
            b,
        )
    _other_states(skipped, prow.name, verdict.site, rows, queued_reason=None)


def _other_states(
    skipped: list[dict[str, Any]],
    project: str,
    site: str,
    rows: list[OpenReplicas],
    *,
    queued_reason: dryrun.QueueVerdict | None,
) -> None:
    """Skip entries for the queue's replicas that a claim would not take: paused, waiting for a
    retry, failed, in progress, waiting for a source, lost; with ``queued_reason`` every queued one
    (the queue is skipped)."""
    queued = [r for r in rows if r.status == "queued"]
    if queued_reason is not None:
        reason, detail = queued_reason.skip or dryrun.NO_SOURCE, queued_reason.detail
        _skip(skipped, project, site, reason, detail, sum(r.files for r in queued), sum(r.bytes for r in queued))
    else:
        paused = [r for r in queued if r.paused]
        _skip(
            skipped,
            project,
            site,
            dryrun.PAUSED,
            "representations paused on this site (`sitesync resume -r ID --site SITE`)",
            sum(r.files for r in paused),
            sum(r.bytes for r in paused),
        )
        later = [r for r in queued if not r.paused and not r.due]
        if later:
            soonest = min((r.next_attempt_at for r in later if r.next_attempt_at), default=None)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(soonest)) if soonest else "later"
            _skip(
                skipped,
                project,
                site,
                dryrun.RETRY_LATER,
                f"{dryrun.REASONS[dryrun.RETRY_LATER]}; the first at {when}",
                sum(r.files for r in later),
                sum(r.bytes for r in later),
            )
    for status, reason in (
        ("failed", dryrun.FAILED),
        ("in_progress", dryrun.IN_PROGRESS),
        ("no_source", dryrun.WAITING_FOR_SOURCE),
        ("missing", dryrun.LOST),
    ):
        matching = [r for r in rows if r.status == status]
        _skip(
            skipped,
            project,
            site,
            reason,
            dryrun.REASONS[reason],
            sum(r.files for r in matching),
            sum(r.bytes for r in matching),
        )


__all__ = ["build_plan", "recorded_unavailable"]
