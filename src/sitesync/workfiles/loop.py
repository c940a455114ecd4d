"""The workfile part of the worker loop (a step registered in ``Client.worker_steps``, run once per
turn like the preferred-content rules; ``engine/steps.py``): one ``WorkfileStep`` pass for every project with
``workfiles.enabled``, at most once per ``WORKFILE_PACE`` seconds per project when the worker runs
continuously (``sync --once`` runs every pass). A failing pass is logged and never stops the worker.
"""

from __future__ import annotations

import getpass
import logging
import platform
import time
from collections.abc import Mapping

from sitesync.engine.steps import StepContext, StepOwner
from sitesync.machine_view import ProjectView, ProviderPool
from sitesync.state.store import StateStore

log = logging.getLogger("sitesync.workfiles")
WORKFILE_PACE = 10.0


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class WorkfileLoop:
    def __init__(self, store: StateStore, worker_id: str, pool: ProviderPool, site_id: str, *, paced: bool) -> None:
        self.store = store
        self.worker_id = worker_id
        self.pool = pool
        self.site_id = site_id
        self.paced = paced
        self._last: dict[str, float] = {}

    @classmethod
    def for_worker(cls, owner: StepOwner) -> WorkfileLoop:
        """The worker step (``engine/steps.py``); the site is the worker's (taken at each turn)."""
        return cls(owner.store, owner.worker_id, owner.pool, "", paced=not owner.once)

    def run(self, ctx: StepContext) -> bool:
        """One turn: the passes due. Workfile transfers run inside the pass, so it never leaves work
        in the publish queues (False)."""
        self.site_id = ctx.machine.site_id
        self.step(ctx.views, ctx.project_ids)
        return False

    def step(self, views: Mapping[str, ProjectView], project_ids: Mapping[str, int]) -> int:
        """Run the passes due; returns how many versions and copies they recorded or wrote."""
        from sitesync.workfiles.step import WorkfileStep

        done = 0
        now = time.monotonic()
        for name, view in views.items():
            if not view.workfiles.enabled or not view.sync_enabled or name not in project_ids:
                continue
            if self.paced and now - self._last.get(name, -WORKFILE_PACE) < min(WORKFILE_PACE, view.settings.loop_delay):
                continue
            self._last[name] = now
            try:
                step = WorkfileStep(
                    self.store,
                    view,
                    project_ids[name],
                    self.pool,
                    self.site_id,
                    self.worker_id,
                    _user(),
                    platform.node() or "unknown",
                    owner=self.worker_id,
                )
                result = step.run()
            except Exception as exc:  # never stop the worker for one project's workfiles
                log.warning("workfile sync of project %s failed: %s", name, exc)
                continue
            for error in result.errors:
                log.warning("workfiles of %s: %s", name, error)
            done += result.versions + result.transfers + result.deletions
        return done
