"""The planner: pure decisions, state in and actions out. No I/O, no clock, no database.

* ``publish_targets``: where a new publish is queued.
* ``work_plan``: which (project, target site) queues this worker serves and from which sources,
  given pauses and sites that are currently unavailable.
* ``choose_source``: which verified copy a transfer reads from.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from sitesync.machine_view import ProjectView
from sitesync.settings.models import STUDIO
from sitesync.state.schema import ALL, WORKER_PAUSE


def publish_targets(view: ProjectView, present_site: str) -> list[str]:
    """Sites a publish on ``present_site`` is queued for: the remote site and every
    ``always_accessible_on`` site (nothing when sync is off for the project). One site per
    alternatives group (one storage reached several ways): the first named gets the transfer, the
    others are recorded present by the alternatives rule when it lands."""
    if not view.sync_enabled:
        return []
    skip = {present_site, *_alts(view, present_site)}
    out: list[str] = []
    for site in (view.remote_site, *view.always_accessible_on):
        if site in skip or site in out or site not in view.sites:
            continue
        if any(other in _alts(view, site) for other in out):
            continue  # the same storage as a site already queued: one transfer for both
        out.append(site)
    return out


def _alts(view: ProjectView, site: str) -> Set[str]:
    spec = view.sites.get(site)
    return set(spec.alternatives) if spec else set()


def is_paused(pauses: Set[tuple[str, str]], project: str, site: str) -> bool:
    return bool({(ALL, ALL), (project, ALL), (ALL, site), (project, site)} & pauses)


def worker_paused(pauses: Set[tuple[str, str]], site_id: str) -> bool:
    """Whether the workers of the machine with ``site_id`` are paused: that machine's workers, or
    everything (``pauses``: the store's ``pauses()``). The one definition: the worker, the dashboard's
    project list, metrics and the API's health all ask here."""
    return (WORKER_PAUSE, site_id) in pauses or (ALL, ALL) in pauses


@dataclass(frozen=True)
class QueuePlan:
    """One queue the worker drains: files wanted on ``target`` with a copy on one of ``sources``."""

    project: str
    target: str
    sources: tuple[str, ...]


def work_plan(
    view: ProjectView,
    pauses: Set[tuple[str, str]],
    unavailable: Set[str],
    only_targets: Iterable[str] | None = None,
) -> list[QueuePlan]:
    if not view.sync_enabled or is_paused(pauses, view.name, ALL):
        return []
    usable = [name for name in view.reachable_sites if name not in unavailable]
    wanted_targets = set(only_targets) if only_targets is not None else None
    plans = []
    for target in usable:
        if wanted_targets is not None and target not in wanted_targets:
            continue
        if is_paused(pauses, view.name, target):
            continue
        sources = tuple(s for s in usable if s != target and s not in view.sites[target].alternatives)
        if sources:
            plans.append(QueuePlan(view.name, target, sources))
    return plans


def source_preference(view: ProjectView, target: str) -> list[str]:
    """Preferred order of sources for a transfer to ``target``."""
    order = [view.active_site, view.remote_site, STUDIO]
    return [s for s in dict.fromkeys(order) if s != target]


def choose_source(candidates: Iterable[str], usable: Set[str], preference: list[str]) -> str | None:
    """The first preferred usable site holding a verified copy, else any usable holder."""
    holders = [c for c in candidates if c in usable]
    if not holders:
        return None
    for site in preference:
        if site in holders:
            return site
    return sorted(holders)[0]
