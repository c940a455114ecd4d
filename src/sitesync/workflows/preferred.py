"""Preferred content: each site's rule (``workflows/rules.py``) turned into requests.

Where rules live: the project setting ``sites.NAME.wants`` (``sites.local.wants`` is every
workstation's own site), and this machine's local setting ``wants`` (per project or as the
default), which overrides ``sites.local.wants`` for this machine's own site.

What a rule does: every representation it matches is wanted on the site, as if someone had asked
for it (priority ``PREFERRED_PRIORITY``, below explicit requests). A representation already wanted
there is left alone, failed files are not retried (that stays a person's decision), and a rule
never removes anything: a representation that stops matching keeps its copies.

How the worker evaluates rules without rescanning the catalog every loop (``PreferredContent``):
per (project, site) a cursor remembers the rule. A *full pass* pages through the project's
representations in id order (``ix_representations_project_id_id``), one page per loop, when the
rule is first seen or changed, and again every ``FULL_PASS_SECONDS`` (self-healing). Between full
passes only new publishes are read: ids above a high-water mark, plus a cheap count of a short
recent window that catches publishes whose transaction committed after a higher id was read.
Everything is idempotent, so several workers evaluating the same rule do no harm.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sitesync.engine.steps import StepContext, StepOwner
from sitesync.machine_view import MachineView, ProjectView
from sitesync.settings.models import LOCAL
from sitesync.state.schema import HERO_VERSION
from sitesync.state.store import StateStore
from sitesync.state.workflows import RuleCandidate
from sitesync.workflows.rules import Node, RuleError, parse_rule, uses_latest

log = logging.getLogger("sitesync.preferred")

PREFERRED_PRIORITY = 40
PAGE = 500
CHECK_SECONDS = 2.0
RECENT_SECONDS = 120.0  # publishes commit within seconds; ids in this window are re-counted
FULL_PASS_SECONDS = 6 * 3600.0
# rule work per step keeps going page after page for this long (at least one page per site); the
# worker's loop waits meanwhile, so it stays short: a 100,000-representation pass takes minutes, not hours
STEP_BUDGET_SECONDS = 0.2


def site_rule(machine: MachineView, project: ProjectView, site: str) -> str | None:
    """The rule of ``site`` in ``project`` as this machine sees it (None: the site has no rule)."""
    if site == machine.site_id:
        local = machine.local_overrides(project.name).wants
        if local is not None:
            return local
        ps = project.settings.sites.get(LOCAL) or project.settings.sites.get(site)
    else:
        ps = project.settings.sites.get(site)
    return ps.wants if ps is not None else None


@dataclass(frozen=True, slots=True)
class _Facts:
    folder: str
    product: str
    name: str
    is_hero: bool
    is_latest: bool
    age: float


def matching(
    store: StateStore, project_id: int, rule: Node, candidates: Sequence[RuleCandidate], now: float
) -> list[int]:
    """The ids of the candidates the rule matches."""
    latest: dict[tuple[str, str], int] = {}
    if uses_latest(rule):
        latest = store.latest_versions(project_id, {(c.folder, c.product) for c in candidates if c.version >= 0})
    out = []
    for c in candidates:
        facts = _Facts(
            folder=c.folder,
            product=c.product,
            name=c.name,
            is_hero=c.version == HERO_VERSION,
            is_latest=c.version >= 0 and latest.get((c.folder, c.product)) == c.version,
            age=max(0.0, now - c.created_at),
        )
        if rule.matches(facts):
            out.append(c.id)
    return out


def request(
    store: StateStore, rep_ids: Sequence[int], site: str, actor: str, alternatives: Sequence[str], rule_text: str
) -> list[int]:
    """Want the matched representations on the site (those not wanted there yet)."""
    if not rep_ids:
        return []
    already = store.wanted_on_site(rep_ids, site)
    todo = [i for i in rep_ids if i not in already]
    if not todo:
        return []
    return store.want_many(
        todo,
        site,
        actor,
        priority=PREFERRED_PRIORITY,
        alternatives=alternatives,
        reason=f"preferred content rule {rule_text!r}",
    )


def preview(
    store: StateStore,
    project_id: int,
    rule_text: str,
    site: str,
    actor: str,
    alternatives: Sequence[str],
    *,
    apply: bool,
    page: int = PAGE,
) -> dict[str, Any]:
    """Evaluate a rule over the whole project now: what it matches, what is not wanted yet, and
    (``apply``) request those."""
    rule = parse_rule(rule_text)
    now = time.time()
    after = 0
    matched: list[int] = []
    while True:
        candidates = store.rule_candidates(project_id, after, page)
        if not candidates:
            break
        after = candidates[-1].id
        matched.extend(matching(store, project_id, rule, candidates, now))
    wanted = store.wanted_on_site(matched, site)
    new = [i for i in matched if i not in wanted]
    queued = request(store, new, site, actor, alternatives, rule_text) if apply else []
    return {"matched": matched, "not_wanted_yet": new, "requested": queued}


@dataclass
class _Cursor:
    rule_text: str
    rule: Node
    full_after: int | None = 0  # keyset position of the running full pass; None: none running
    full_started: float = 0.0
    high: int = 0  # highest id evaluated by the incremental pass
    low: int = 0  # ids in (low, high] were evaluated recently; ids <= low are settled
    recent: dict[int, float] = field(default_factory=dict)  # id -> when evaluated


class PreferredContent:
    """The worker's hook: ``step()`` once per loop evaluates a bounded amount of rule work and
    says whether anything was queued. Never raises (errors are logged, the worker goes on).

    At most one step every ``CHECK_SECONDS``, doing pages of rule work for up to
    ``STEP_BUDGET_SECONDS`` (at least one page per project and site); ``paced=False``
    (``sync --once``) finishes all pending rule work in that step."""

    def __init__(self, store: StateStore, actor: str, *, paced: bool = True) -> None:
        self.store = store
        self.actor = actor
        self.paced = paced
        self._cursors: dict[tuple[str, str], _Cursor] = {}
        self._last_step = 0.0
        self._bad_rules: set[str] = set()

    @classmethod
    def for_worker(cls, owner: StepOwner) -> PreferredContent:
        """The worker step (``engine/steps.py``): a ``sync --once`` run is not paced."""
        return cls(owner.store, owner.worker_id, paced=not owner.once)

    def run(self, ctx: StepContext) -> bool:
        return self.step(ctx.machine, ctx.views, ctx.project_ids, ctx.targets)

    def step(
        self,
        machine: MachineView,
        views: Mapping[str, ProjectView],
        project_ids: Mapping[str, int],
        targets: Collection[str] | None = None,
    ) -> bool:
        now = time.monotonic()
        if self._last_step and now - self._last_step < CHECK_SECONDS:
            return False
        self._last_step = now
        deadline = now + STEP_BUDGET_SECONDS
        queued = False
        active: set[tuple[str, str]] = set()
        for name, pv in views.items():
            pid = project_ids.get(name)
            if pid is None or not pv.sync_enabled:
                continue
            for site in pv.reachable_sites:
                if targets is not None and site not in targets:
                    continue
                try:
                    queued |= self._site_step(machine, pv, pid, site, active, deadline)
                except Exception:  # a rule problem must never stop the worker
                    log.exception("preferred content of site %s in project %s failed; retrying later", site, name)
        for key in set(self._cursors) - active:
            del self._cursors[key]
        return queued

    def _site_step(
        self,
        machine: MachineView,
        pv: ProjectView,
        pid: int,
        site: str,
        active: set[tuple[str, str]],
        deadline: float,
    ) -> bool:
        text = site_rule(machine, pv, site)
        if text is None:
            return False
        key = (pv.name, site)
        try:
            rule = parse_rule(text)
        except RuleError as exc:
            # a rule that does not parse (stored by hand, or by another version) wants nothing extra
            if text not in self._bad_rules:
                self._bad_rules.add(text)
                log.error("site %s in project %s: rule %r ignored: %s", site, pv.name, text, exc)
            return False
        active.add(key)
        wall = time.time()
        cur = self._cursors.get(key)
        if cur is None or cur.rule_text != text:
            top = self.store.max_representation_id(pid)
            cur = self._cursors[key] = _Cursor(text, rule, full_started=wall, high=top, low=top)
        elif cur.full_after is None and wall - cur.full_started >= FULL_PASS_SECONDS:
            cur.full_after, cur.full_started = 0, wall
        alternatives = pv.sites[site].alternatives
        queued = False
        while True:
            progressed = False
            if cur.full_after is not None:
                page = self.store.rule_candidates(pid, cur.full_after, PAGE)
                queued |= self._apply(pid, site, cur, page, alternatives, wall)
                cur.full_after = page[-1].id if len(page) == PAGE else None
                progressed = cur.full_after is not None
            new = self._incremental(pid, site, cur, alternatives, wall)
            queued |= new > 0
            progressed |= new >= PAGE
            if not progressed or (self.paced and time.monotonic() >= deadline):
                return queued

    def _incremental(self, pid: int, site: str, cur: _Cursor, alternatives: Sequence[str], wall: float) -> int:
        page = self.store.rule_candidates(pid, cur.high, PAGE)
        # publishes that committed late, below ids already read: a count of the window finds them
        late: list[RuleCandidate] = []
        if cur.high > cur.low and self.store.count_representations(pid, cur.low, cur.high) != len(cur.recent):
            ids = [i for i in self.store.representation_ids(pid, cur.low, cur.high) if i not in cur.recent]
            late = self.store.rule_candidates_by_ids(ids)
        candidates = late + page
        if candidates:
            self._apply(pid, site, cur, candidates, alternatives, wall)
        for c in candidates:
            cur.recent[c.id] = wall
        if page:
            cur.high = max(cur.high, page[-1].id)
        settled = [i for i, at in cur.recent.items() if at < wall - RECENT_SECONDS]
        if settled:
            # everything up to the oldest still-recent id is settled
            done = set(settled)
            still = [i for i in cur.recent if i not in done]
            cur.low = min(still) - 1 if still else cur.high
            cur.recent = {i: at for i, at in cur.recent.items() if i > cur.low}
        return len(page)

    def _apply(
        self,
        pid: int,
        site: str,
        cur: _Cursor,
        candidates: Sequence[RuleCandidate],
        alternatives: Sequence[str],
        wall: float,
    ) -> bool:
        ids = matching(self.store, pid, cur.rule, candidates, wall)
        added = request(self.store, ids, site, self.actor, alternatives, cur.rule_text)
        if added:
            log.info("site %s: rule %r queued %d representations", site, cur.rule_text, len(added))
        return bool(added)


__all__ = ["PREFERRED_PRIORITY", "PreferredContent", "matching", "preview", "request", "site_rule"]
