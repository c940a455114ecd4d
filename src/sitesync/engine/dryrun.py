"""The dry-run plan's decisions, pure like the planner they explain: state in, verdicts out.

``queue_verdicts`` says for every site of a project whether this machine's worker would serve
its queue now (and from which sources, in the worker's order) or why not: sync off, paused,
disabled, another machine's own site, not selected, backed off, no source. ``file_source``
picks the copy a transfer would read, with the worker's own preference. The facade reads the
database and the worker's knowledge of unreachable sites, and assembles the plan from these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from sitesync.engine.planner import ALL, WORKER_PAUSE, choose_source, source_preference, work_plan
from sitesync.machine_view import ProjectView

# why a queue (or part of one) is not worked on now
SYNC_OFF = "sync_off"
PAUSED = "paused"
DISABLED = "disabled"
OTHER_MACHINE = "other_machine"
NOT_SELECTED = "not_selected"
BACKED_OFF = "backed_off"
NO_SOURCE = "no_source"
RETRY_LATER = "retry_later"
FAILED = "failed"
IN_PROGRESS = "in_progress"
WAITING_FOR_SOURCE = "waiting_for_source"
LOST = "lost"
REASONS = {
    SYNC_OFF: "site sync is off for the project (or for the whole system)",
    PAUSED: "paused",
    DISABLED: "the site is disabled in the project",
    OTHER_MACHINE: "another machine's own site: that machine's worker transfers these",
    NOT_SELECTED: "not among the sites or projects this run was limited to",
    BACKED_OFF: "the site could not be reached; the worker tries it again later",
    NO_SOURCE: "no site this worker can read holds a verified copy",
    RETRY_LATER: "waiting for the retry after a failed attempt",
    FAILED: "failed after all attempts; `sitesync reset` queues them again",
    IN_PROGRESS: "being transferred by a worker now",
    WAITING_FOR_SOURCE: "no site holds a verified copy any more (the copies read were found lost); queued "
    "again as soon as one does: restore the file and run `sitesync validate SITE`",
    LOST: "the verified copy recorded here was found gone or changed (lost); `sitesync status` shows the "
    "representation as lost on this site",
}


@dataclass(frozen=True)
class QueueVerdict:
    project: str
    site: str
    sources: tuple[str, ...] = ()  # served from these, in the worker's order (when not skipped)
    skip: str | None = None
    detail: str = ""


def pause_detail(pauses: Set[tuple[str, str]], project: str, site: str, site_id: str) -> str | None:
    """Which pause stops work on (project, site), in words, or None."""
    if (WORKER_PAUSE, site_id) in pauses:
        return "this machine's workers are paused (`sitesync resume --worker`)"
    if (ALL, ALL) in pauses:
        return "all syncing is paused (`sitesync resume`)"
    if (project, ALL) in pauses:
        return f"project {project} is paused"
    if (ALL, site) in pauses:
        return f"site {site} is paused"
    if (project, site) in pauses:
        return f"site {site} is paused in project {project}"
    return None


def queue_verdicts(
    view: ProjectView,
    pauses: Set[tuple[str, str]],
    unavailable: Mapping[str, str],
    site_id: str,
    only_targets: Iterable[str] | None = None,
) -> list[QueueVerdict]:
    """A verdict for each site of the project, in the order the worker serves its queues."""
    plans = {p.target: p for p in work_plan(view, pauses, set(unavailable), only_targets)}
    if (WORKER_PAUSE, site_id) in pauses:
        plans = {}  # the worker takes nothing while it is paused (work_plan leaves that to it)
    wanted = set(only_targets) if only_targets is not None else None
    out = []
    for name in view.sites:
        plan = plans.get(name)
        if plan is not None:
            out.append(QueueVerdict(view.name, name, plan.sources))
            continue
        reason, detail = _why_not(view, pauses, unavailable, site_id, wanted, name)
        out.append(QueueVerdict(view.name, name, skip=reason, detail=detail))
    served = [v for v in out if v.skip is None]
    return served + [v for v in out if v.skip is not None]


def _why_not(
    view: ProjectView,
    pauses: Set[tuple[str, str]],
    unavailable: Mapping[str, str],
    site_id: str,
    wanted: Set[str] | None,
    name: str,
) -> tuple[str, str]:
    spec = view.sites[name]
    if not view.sync_enabled:
        return SYNC_OFF, REASONS[SYNC_OFF]
    paused = pause_detail(pauses, view.name, name, site_id)
    if paused:
        return PAUSED, paused
    if not spec.enabled:
        return DISABLED, REASONS[DISABLED]
    if not spec.reachable:
        return OTHER_MACHINE, spec.reason or REASONS[OTHER_MACHINE]
    if wanted is not None and name not in wanted:
        return NOT_SELECTED, REASONS[NOT_SELECTED]
    if name in unavailable:
        return BACKED_OFF, unavailable[name]
    return NO_SOURCE, "no other site is usable from this machine as a source"


def foreign_verdict(project: str, site: str) -> QueueVerdict:
    """A queue for a site this machine does not know: another machine's own site."""
    return QueueVerdict(project, site, skip=OTHER_MACHINE, detail=REASONS[OTHER_MACHINE])


def file_source(view: ProjectView, target: str, holders: Iterable[str], usable: Iterable[str]) -> str | None:
    """The copy a transfer to ``target`` would read: the worker's own choice."""
    return choose_source(holders, set(usable), source_preference(view, target))


__all__ = [
    "REASONS",
    "QueueVerdict",
    "file_source",
    "foreign_verdict",
    "pause_detail",
    "queue_verdicts",
]
