"""The workfile part of the worker loop (a step registered in ``Client.worker_steps``, run once per
turn like the preferred-content rules; ``engine/steps.py``).

For every project with ``workfiles.enabled`` a running worker (``sitesync worker``/``serve``):

* **watches** the work areas it scans (``WorkfileStep.scan_sites``: its own disk site, on each
  workfile root) with a ``WorkAreaWatcher`` each; a save heard wakes the worker from its idle sleep
  (``StepOwner.wake``) and the next turn runs a **hinted pass**: ``scan_paths`` of only the paths
  heard, then propagation. Paths still being written (younger than the scanner's settle time) are
  heard again: they stay hinted and the worker is woken once they have settled;
* runs a **full pass** (``scan_work_area`` of every work area, then propagation) every
  ``FULL_SCAN_PACE`` seconds when every work area is watched, every ``WORKFILE_PACE`` seconds
  (capped by ``loop_delay``) where one cannot be (no local path, the inotify limit, a folder not
  there yet: the watcher says why once, and is tried again every ``WATCH_RETRY`` seconds).
  Watchers miss events, so the full scans stay the source of truth;
* runs a **propagation pass** (no scan: bring other machines' recorded saves here) at most every
  ``PROPAGATE_PACE`` seconds per turn, so a save recorded elsewhere arrives at this worker's next
  turn. After a pass that recorded versions, the workers of other machines are told
  (``store.notify_workers``: PostgreSQL NOTIFY; on SQLite they come at their next turn, within
  ``loop_delay``).

``sync --once`` (``paced`` False) runs one full pass per turn and watches nothing. A failing pass is
logged and never stops the worker.
"""

from __future__ import annotations

import getpass
import logging
import platform
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sitesync.engine.steps import StepContext, StepOwner
from sitesync.machine_view import ProjectView, ProviderPool
from sitesync.state.store import StateStore
from sitesync.workfiles.watch import WorkAreaWatcher

if TYPE_CHECKING:
    from sitesync.workfiles.step import WorkfileStep

log = logging.getLogger("sitesync.workfiles")
WORKFILE_PACE = 10.0  # full passes where a work area cannot be watched
FULL_SCAN_PACE = 60.0  # full passes where every work area is watched
PROPAGATE_PACE = 2.0  # propagation-only passes (saves recorded by other machines)
WATCH_RETRY = 60.0  # a watcher that could not start is tried again after this long


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class _Watch:
    watcher: WorkAreaWatcher
    started: float


@dataclass
class _Project:
    """One project's pacing and watchers."""

    last_full: float = float("-inf")
    last_pass: float = float("-inf")
    watches: dict[tuple[str, str, str], _Watch] = field(default_factory=dict)  # (site, root, base) -> watch
    unsettled: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (site, root) -> paths
    recheck_at: float = float("inf")  # when unsettled paths have settled (monotonic)


class WorkfileLoop:
    def __init__(
        self,
        store: StateStore,
        worker_id: str,
        pool: ProviderPool,
        site_id: str,
        *,
        paced: bool,
        wake: Callable[[], None] | None = None,
        watch: bool | None = None,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.pool = pool
        self.site_id = site_id
        self.paced = paced
        self.wake = wake
        self.watch = paced if watch is None else watch
        self._projects: dict[str, _Project] = {}
        self._timers: list[threading.Timer] = []
        self._lock = threading.Lock()
        self._come_back_at = 0.0

    @classmethod
    def for_worker(cls, owner: StepOwner) -> WorkfileLoop:
        """The worker step (``engine/steps.py``); the site is the worker's (taken at each turn)."""
        return cls(owner.store, owner.worker_id, owner.pool, "", paced=not owner.once, wake=owner.wake)

    def run(self, ctx: StepContext) -> bool:
        """One turn: the passes due. Workfile transfers run inside the pass, so it never leaves work
        in the publish queues (False)."""
        self.site_id = ctx.machine.site_id
        self.step(ctx.views, ctx.project_ids)
        return False

    # ------------------------------------------------------------------ watching

    def _heard(self) -> None:
        """A watcher heard a change (its thread): wake the worker's loop."""
        if self.wake is not None:
            self.wake()

    def _ensure_watches(self, state: _Project, step: WorkfileStep, now: float) -> bool:
        """Watchers for every work area ``step`` scans; True when all of them are listening."""
        from sitesync.workfiles.scan import WorkAreaSelector

        wanted: set[tuple[str, str, str]] = set()
        for site in step.scan_sites():
            for root in step.settings.roots:
                base = step.project_folder(site, root)
                if base is not None:
                    wanted.add((site, root, base))
        for key in [k for k in state.watches if k not in wanted]:  # settings changed: stop the old ones
            state.watches.pop(key).watcher.stop()
        all_on = bool(wanted)
        for key in sorted(wanted):
            site, root, base = key
            w = state.watches.get(key)
            if w is not None and not w.watcher.watching and now - w.started >= WATCH_RETRY:
                w.watcher.stop()
                w = None
            if w is None:
                selector = WorkAreaSelector(step.settings.paths, step.settings.ignore)
                watcher = WorkAreaWatcher(step.providers[site], base, selector, on_change=self._heard)
                watcher.start()
                w = state.watches[key] = _Watch(watcher, now)
            all_on &= w.watcher.watching
        return all_on

    def _hints(self, state: _Project, now: float) -> dict[tuple[str, str], set[str]]:
        hints: dict[tuple[str, str], set[str]] = {}
        for (site, root, _base), w in state.watches.items():
            heard = w.watcher.take()
            if heard:
                hints.setdefault((site, root), set()).update(heard)
        if state.unsettled and now >= state.recheck_at:
            for key, paths in state.unsettled.items():
                hints.setdefault(key, set()).update(paths)
            state.unsettled = {}
            state.recheck_at = float("inf")
        return hints

    def _wake_later(self, delay: float) -> None:
        if self.wake is None:
            return
        timer = threading.Timer(delay, self._heard)
        timer.daemon = True
        with self._lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _come_back(self, delay: float) -> None:
        """Wake the worker after ``delay`` (one such timer at a time)."""
        now = time.monotonic()
        if self._come_back_at > now:
            return
        self._come_back_at = now + delay
        self._wake_later(delay)

    def watch_state(self, project: str) -> dict[str, str | None]:
        """The watched work areas of ``project`` (provider path) -> None when listening, else why not."""
        state = self._projects.get(project)
        if state is None:
            return {}
        return {
            base: (None if w.watcher.watching else w.watcher.error or "not started")
            for (_s, _r, base), w in state.watches.items()
        }

    def close(self) -> None:
        """Stop every watcher and pending wake-up (the worker is ending)."""
        with self._lock:
            timers, self._timers = self._timers, []
        for t in timers:
            t.cancel()
        for state in self._projects.values():
            for w in state.watches.values():
                w.watcher.stop()
            state.watches.clear()

    # ------------------------------------------------------------------ passes

    def step(self, views: Mapping[str, ProjectView], project_ids: Mapping[str, int]) -> int:
        """Run the passes due; returns how many versions and copies they recorded or wrote."""
        from sitesync.workfiles.step import WorkfileStep

        done = 0
        now = time.monotonic()
        for name in [n for n in self._projects if n not in views]:  # a project no longer served
            self._drop(name)
        for name, view in views.items():
            if not view.workfiles.enabled or not view.sync_enabled or name not in project_ids:
                self._drop(name)
                continue
            state = self._projects.setdefault(name, _Project())
            if self.paced and now - state.last_pass < PROPAGATE_PACE and not self._heard_any(state, now):
                self._come_back(state.last_pass + PROPAGATE_PACE - now)  # a wake-up is never lost to pacing
                continue
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
                watched = self._ensure_watches(state, step, now) if self.watch else False
                full_pace = FULL_SCAN_PACE if watched else min(WORKFILE_PACE, view.settings.loop_delay)
                hints: dict[tuple[str, str], set[str]] | None
                if not self.paced or now - state.last_full >= full_pace:
                    hints = None
                    state.last_full = now
                    self._hints(state, float("inf"))  # a full scan covers whatever was heard
                else:
                    hints = self._hints(state, now)
                state.last_pass = now
                if hints:
                    log.debug(
                        "workfiles of %s: hinted pass over %s",
                        name,
                        ", ".join(
                            f"{site}:{root}:{p or '.'}" for (site, root), ps in hints.items() for p in sorted(ps)
                        ),
                    )
                elif hints is None:
                    log.debug("workfiles of %s: full pass (watched: %s)", name, watched)
                result = step.run(hints)
                self._unsettled(state, step.unsettled, step.settle_seconds, now)
            except Exception as exc:  # never stop the worker for one project's workfiles
                log.warning("workfile sync of project %s failed: %s", name, exc)
                continue
            for error in result.errors:
                log.warning("workfiles of %s: %s", name, error)
            if result.versions and self.paced:
                self._tell_others(name)
            done += result.versions + result.transfers + result.deletions
        return done

    def _heard_any(self, state: _Project, now: float) -> bool:
        """Whether a watcher heard something not taken yet, or unsettled paths are due."""
        if state.unsettled and now >= state.recheck_at:
            return True
        return any(w.watcher.pending for w in state.watches.values())

    def _unsettled(
        self, state: _Project, found: Mapping[tuple[str, str], Collection[str]], settle: float, now: float
    ) -> None:
        if not found:
            return
        for key, paths in found.items():
            state.unsettled.setdefault(key, set()).update(paths)
        if self.paced:
            state.recheck_at = min(state.recheck_at, now + settle)
            self._wake_later(settle + 0.1)

    def _tell_others(self, name: str) -> None:
        try:
            self.store.notify_workers()
        except Exception as exc:  # a courtesy: the others come at their next turn anyway
            log.debug("could not notify other machines' workers of %s's workfiles: %s", name, exc)

    def _drop(self, name: str) -> None:
        state = self._projects.pop(name, None)
        if state is not None:
            for w in state.watches.values():
                w.watcher.stop()
