"""The worker: claims work under leases, runs verified transfers in a thread pool, keeps leases
alive with progress, writes outcomes in batches, and never dies.

One main thread talks to the database (claims, heartbeats, outcome batches, lease expiry); the
pool's threads only move bytes. An error in one file, site or project is recorded and the others
go on; an unexpected error in the loop is logged and the loop continues after a short pause.
A site that cannot be reached is left alone for a growing while, without burning files' attempts
(``sitehealth.py``: one back-off step per outage). What a failed transfer means for its file is
decided by ``errors.decide``; the worker records that verdict as it is.
When idle it sleeps until the earliest of: the next queued retry falling due, the next re-check of
a held-back site, ``loop_delay``, a wake-up.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sitesync.engine.bandwidth import MachineBandwidth
from sitesync.engine.leftovers import LeftoverSweep
from sitesync.engine.liveness import HEARTBEAT_SECONDS, HEARTBEAT_TIMEOUT_SECONDS, Heartbeat, reclaim_dead_leases
from sitesync.engine.outcomes import failure_outcome, make_outcome, site_backoff
from sitesync.engine.planner import QueuePlan, choose_source, source_preference, work_plan, worker_paused
from sitesync.engine.progress import Progress
from sitesync.engine.removal import finish_stale_removals
from sitesync.engine.report import SYNC_EXIT_CODES, RunReport
from sitesync.engine.sitehealth import SiteHealth
from sitesync.engine.sources import diagnose
from sitesync.engine.steps import StepContext, StepOwner, StepRegistry, WorkerStep
from sitesync.engine.transfer import Expected, copy_verified, seen_of
from sitesync.engine.wake import WakeListener
from sitesync.errors import SitesyncError, SiteUnavailableError, StorageError
from sitesync.identity.storage import usable_site
from sitesync.machine_view import MachineView, ProjectView, ProviderPool, alternative_closure
from sitesync.providers.base import Provider
from sitesync.state.records import ClaimedReplica, Outcome
from sitesync.state.store import StateStore

if TYPE_CHECKING:
    from sitesync.state.notify import NotificationRelay

log = logging.getLogger("sitesync.worker")

IDLE_RECHECK_SECONDS = 2.0  # while busy, look at empty queues again this often
BUFFER_BYTES = 256 * 1024 * 1024  # leased-but-not-started work per worker (bounds hogging)


class TransferCancelled(Exception):
    """Raised inside a transfer's byte counter to abort it (worker stopping, lease lost)."""


@dataclass
class WorkerOptions:
    concurrency: int = 4
    batch_size: int = 256
    lease_seconds: float = 60.0
    once: bool = False
    projects: list[str] | None = None
    targets: list[str] | None = None
    flush_seconds: float = 0.25
    flush_count: int = 500
    settings_check_seconds: float = 2.0
    stop_grace_seconds: float = 10.0


@dataclass
class _Job:
    claim: ClaimedReplica
    project: ProjectView
    source: str
    source_provider: Provider
    target_provider: Provider
    started: float  # monotonic time of the claim (a site failure from before its recovery is stale)
    target_path: str = ""  # where the copy goes on the target (its key in the target's flush() failures)
    cancel: threading.Event = field(default_factory=threading.Event)


def new_worker_id(site_id: str) -> str:
    return f"{site_id}/{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        store: StateStore,
        load_view: Callable[[], MachineView],
        options: WorkerOptions | None = None,
        *,
        worker_id: str | None = None,
        wake: WakeListener | None = None,
        pool: ProviderPool | None = None,
        notifications: NotificationRelay | None = None,
        bandwidth: MachineBandwidth | None = None,
        steps: StepRegistry | None = None,
    ) -> None:
        self.store = store
        self._load_view = load_view
        self.options = options or WorkerOptions()
        self.view = load_view()
        self.worker_id = worker_id or new_worker_id(self.view.site_id)
        self.wake = wake
        # wakes from other machines sharing a PostgreSQL queue; started and stopped by run()
        self.notifications = notifications
        self.pool = pool or ProviderPool()
        # this machine's bandwidth limits, shared with its other workers (engine/bandwidth.py)
        self.bandwidth = bandwidth or MachineBandwidth.for_view(lambda: self.view)
        self.progress = Progress()
        self._stop = threading.Event()
        self.health = SiteHealth(self._site_event)
        self.leftovers = LeftoverSweep()
        self._served: set[tuple[int, str]] = set()  # (project id, target) queues the last claim looked at
        self._turn = 0  # which queue the next claim starts with
        self._idle: set[tuple[str, str]] = set()
        self._inflight: dict[int, _Job] = {}  # replica id -> claimed job, queued or running in the pool
        self._done: queue.SimpleQueue[tuple[_Job, Outcome]] = queue.SimpleQueue()  # filled by pool threads
        self._outcomes: list[Outcome] = []
        # replica id -> (target provider, job) of a copy not yet recorded
        self._written: dict[int, tuple[Provider, _Job]] = {}
        self._views: dict[str, ProjectView] = {}
        self._project_ids: dict[str, int] = {}
        self._pauses: set[tuple[str, str]] = set()
        self._last_settings_check = 0.0
        self._last_flush = time.monotonic()
        self._last_heartbeat = time.monotonic()
        self._last_expiry = 0.0
        self._last_reclaim = -HEARTBEAT_SECONDS
        self.heartbeat = Heartbeat(store, self.worker_id, self.view.site_id)
        self._idle_since = time.monotonic()
        self._avg_size = 1024 * 1024
        self.report = RunReport()
        # per-loop steps the client wired up (engine/steps.py: preferred content...)
        self.steps: dict[str, WorkerStep] = (steps or StepRegistry()).build(
            StepOwner(store, self.worker_id, self.options.once, self.pool, wake.set if wake is not None else None)
        )
        # observation hooks (tests, diagnostics): ``asleep`` is set while the loop sleeps idle;
        # ``idle_sleeps`` counts those sleeps and ``wakeups`` the ones a wake-up cut short (both
        # are also logged at debug level). Nothing in sitesync reads them.
        self.asleep = threading.Event()
        self.idle_sleeps = 0
        self.wakeups = 0

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask the worker to stop: no new claims, running transfers are cancelled and handed back."""
        self._stop.set()
        for job in list(self._inflight.values()):
            job.cancel.set()
        if self.wake is not None:
            self.wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def site_health(self) -> dict[tuple[str, str], str]:
        """(project, site) -> why this worker could not reach the site at its last try (it is
        tried again after a growing pause and leaves this map once it answers)."""
        return self.health.held()

    def sites_reached(self) -> frozenset[tuple[str, str]]:
        """(project, site) pairs this worker reached at its last try."""
        return self.health.reached()

    def site_backoff(self) -> dict[tuple[str, str], tuple[str, float]]:
        """(project, site) -> (why it could not be reached, when it is tried again; Unix time)."""
        return self.health.holds()

    # ------------------------------------------------------------------ main loop

    def run(self) -> RunReport:
        started = time.monotonic()
        failures = 0
        settings_loaded = False
        if self.notifications is not None:
            self.notifications.start()
        self.heartbeat.start()
        with cf.ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="sitesync-transfer") as pool:
            while True:
                try:
                    if self._stop.is_set():
                        break
                    if not settings_loaded:  # inside the loop: a database that is down at start is retried
                        self._refresh(force=True)
                        settings_loaded = True
                    claimed = self._step(pool)
                    failures = 0
                    # idle only when a look for work found none (None: this step did not look)
                    if not self._inflight and claimed == 0:
                        if self._flush(force=True):
                            continue  # retries just went back to the queue: look again before idling
                        if self.options.once:
                            break
                        self._sleep()
                except Exception as exc:  # the loop never dies
                    failures += 1
                    delay = min(30.0, 0.5 * 2 ** min(failures, 6))
                    log.exception("worker loop error (retrying in %.1fs): %s", delay, exc)
                    self.report.errors.append(f"{type(exc).__name__}: {exc}")
                    if self._stop.wait(delay):
                        break
            self._shutdown()
        if self.options.once:
            self._report_unfinished()
        self.heartbeat.close()
        self.bandwidth.close()  # after the pool: no transfer thread accounts any more
        if self.notifications is not None:
            self.notifications.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _report_unfinished(self) -> None:
        """What the run leaves undone, for its report: held-back sites and the queues' rest."""
        self.report.unreachable = sorted((p, site, why) for (p, site), why in self.health.held().items())
        try:
            self.report.remaining = self.store.queue_remaining(self._requested_queues())
        except Exception as exc:  # the database went away at the very end: say so, do not guess
            self.report.errors.append(f"could not count the work left: {exc}")
            self.report.remaining = {}

    def _requested_queues(self) -> set[tuple[int, str]]:
        """(project id, target) of every queue this run was asked to serve, reachable or not
        (a paused queue is not asked for; paused workers are)."""
        out = set()
        for view in self._views.values():
            project_id = self._project_ids.get(view.name)
            for plan in work_plan(view, self._pauses, set(), self.options.targets):
                if project_id is not None:
                    out.add((project_id, plan.target))
        return out

    def _run_steps(self) -> bool:
        """Every registered step once; True when one of them queued work."""
        if not self.steps:
            return False
        ctx = StepContext(self.view, self._views, self._project_ids, self.options.targets)
        queued = False
        for name, step in self.steps.items():
            try:
                queued |= step.run(ctx)
            except Exception:  # a step must never stop the worker
                log.exception("worker step %s failed; trying again next turn", name)
        return queued

    def _step(self, pool: cf.ThreadPoolExecutor) -> int | None:
        """One turn of the loop. Returns how many files were claimed, or None if it did not look."""
        now = time.monotonic()
        self._refresh()
        # taken before the steps run: a wake-up arriving while they run (a workfile save recorded
        # by another machine) stays pending, so the next sleep ends at once and they run again
        woken = self.wake is not None and self.wake.wait(0)
        if self._run_steps():
            self._idle.clear()  # a step (preferred-content rules, workfile sync...) queued work
        if now - self._last_reclaim >= HEARTBEAT_SECONDS:
            self._last_reclaim = now
            # silence is judged only once our own heartbeats got through for a whole timeout
            judge = self.heartbeat.healthy_for() >= HEARTBEAT_TIMEOUT_SECONDS
            if reclaim_dead_leases(self.store, judge_silence=judge, exclude=self.worker_id):
                self._idle.clear()
        if now - self._last_expiry >= self.options.lease_seconds / 2:
            self._last_expiry = now
            expired = self.store.expire_leases()
            if expired:
                log.warning("returned %d transfers whose lease expired to the queue", expired)
                self._idle.clear()
            self._finish_stale_removals()
        self._sweep_leftovers()
        if woken:
            # something was asked (work added, a pause or resume): look at every queue again, with
            # the pauses as they are now, not as the last periodic refresh saw them
            self._idle.clear()
            self._pauses = self.store.pauses()
        elif now - self._idle_since >= IDLE_RECHECK_SECONDS:
            self._idle.clear()
        if not self._idle:
            self._idle_since = now
        claimed: int | None = None
        target = self._claim_target()
        capacity = target - len(self._inflight)
        # refill in batches (below half the target), not a few files at a time: a claim is a write
        # transaction, and for small files a claim per finished file cost more than the copy
        if capacity > 0 and (len(self._inflight) <= target // 2) and not self._stop.is_set():
            claimed = self._claim(pool, capacity)
        if self._inflight:
            self._collect(0.05)
        requeued = self._flush()
        self._heartbeat()
        # a retry that went back to the queue just now counts as work: look again before idling
        return (claimed or 0) + 1 if requeued else claimed

    def _sweep_leftovers(self) -> None:
        """Look again at folders where writes failed, for what they left (``engine/leftovers.py``)."""
        for (project, site), folder in self.leftovers.due():
            view = self._views.get(project)
            if view is None or site not in view.sites or not self._site_usable(view, site):
                continue
            try:
                removed = self.pool.get(view.sites[site]).sweep_leftovers(folder)
            except Exception as exc:  # the next sweep tries again; fsck reports what stays
                log.info("site %s: could not sweep %s for leftovers: %s", site, folder, exc)
                continue
            if removed:
                self._site_event("leftovers_removed", site, f"{len(removed)} in {folder}: " + ", ".join(removed[:20]))

    def _claim_target(self) -> int:
        """How many files to hold leases on: about BUFFER_BYTES of work, at least two per thread."""
        per_file = max(1, self._avg_size)
        wanted = int(BUFFER_BYTES // per_file)
        return max(self.options.concurrency * 2, min(self.options.batch_size, wanted))

    def _sleep(self) -> None:
        """Sleep until the earliest of: the next queued retry of a served queue falling due, the
        next re-check of a held-back site, ``loop_delay``, a wake-up."""
        delay = self._idle_delay()
        log.debug("idle: sleeping up to %.0fs", delay)
        self.idle_sleeps += 1
        self.asleep.set()
        try:
            woken = self.wake.wait(delay) if self.wake is not None else self._stop.wait(delay)
        finally:
            self.asleep.clear()
        if woken:
            self.wakeups += 1
            log.debug("woken up")
            self._pauses = self.store.pauses()
        self._idle.clear()

    def _idle_delay(self) -> float:
        delay = min((v.settings.loop_delay for v in self._views.values()), default=60.0)
        if self.store.leased_owners() - {self.worker_id}:
            delay = min(delay, HEARTBEAT_SECONDS)  # others hold work: be there to reclaim it if they die
        recheck = self.health.next_check()
        if recheck is not None:
            delay = min(delay, recheck - self.health.now())
        due = self.store.next_due(self._served)
        if due is not None:
            delay = min(delay, due - time.time())
        return max(0.05, delay)

    # ------------------------------------------------------------------ settings and plans

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_settings_check < self.options.settings_check_seconds:
            return
        self._last_settings_check = now
        version = self.store.settings_version()
        if force or version != self.view.version:
            self.view = self._load_view()
            self.health.forget_checks()
        projects = self.store.projects()
        self._project_ids = {p.name: p.id for p in projects}
        views: dict[str, ProjectView] = {}
        for p in projects:
            if self.options.projects is not None and p.name not in self.options.projects:
                continue
            try:
                views[p.name] = self.view.project(p.name)
            except SitesyncError as exc:
                log.error("project %s skipped: %s", p.name, exc)
        self._views = views
        self._pauses = self.store.pauses()

    def _site_usable(self, project: ProjectView, site: str) -> bool:
        spec = project.sites[site]
        pid = self._project_ids.get(project.name)
        # reachable, and proven to be the site's own storage (its marker: identity/storage.py)
        return self.health.usable(
            (project.name, site),
            lambda: usable_site(self.store, spec, self.pool.get(spec), self.worker_id, pid),
            site_backoff(project),
        )

    def _site_event(self, kind: str, site: str, message: str) -> None:
        try:
            self.store.add_event(kind, self.worker_id, site=site, message=message[:2000])
        except Exception:  # the history is best effort here; the loop handles DB outages
            log.debug("could not record %s event", kind, exc_info=True)

    def plans(self) -> list[tuple[ProjectView, QueuePlan]]:
        out: list[tuple[ProjectView, QueuePlan]] = []
        if worker_paused(self._pauses, self.view.site_id):
            return out
        for view in self._views.values():
            unavailable = {site for site in view.reachable_sites if not self._site_usable(view, site)}
            for plan in work_plan(view, self._pauses, unavailable, self.options.targets):
                out.append((view, plan))
        return out

    # ------------------------------------------------------------------ claiming and running

    def _claim(self, pool: cf.ThreadPoolExecutor, capacity: int) -> int:
        total = 0
        served: set[tuple[int, str]] = set()
        plans = self.plans()
        if plans:  # each claim starts at the next queue: one busy queue never starves the others
            self._turn = (self._turn + 1) % len(plans)
            plans = plans[self._turn :] + plans[: self._turn]
        for view, plan in plans:
            key = (plan.project, plan.target)
            project_id = self._project_ids.get(plan.project)
            if project_id is None:
                continue
            served.add((project_id, plan.target))
            if key in self._idle:
                continue
            if capacity - total <= 0:
                continue  # full; the loop goes on only to note every queue served
            claims = self.store.claim(
                project_id,
                plan.target,
                plan.sources,
                self.worker_id,
                min(self.options.batch_size, capacity - total),
                self.options.lease_seconds,
                refresh_summaries=False,
                alternatives=view.sites[plan.target].alternatives,  # one transfer per storage
            )
            if not claims:
                self._idle.add(key)
                continue
            total += len(claims)
            batch_bytes = sum(c.size for c in claims)
            self._avg_size = (self._avg_size + batch_bytes // len(claims)) // 2
            self.progress.claimed(len(claims), batch_bytes)
            preference = source_preference(view, plan.target)
            usable = set(plan.sources)
            target = self.pool.get(view.sites[plan.target])
            sources: dict[str, Provider] = {}
            for claim in claims:
                source = choose_source(claim.sources, usable, preference)
                if source is None:  # the holder became unusable meanwhile
                    self._outcomes.append(make_outcome(claim, view, "release", error=None))
                    self.progress.released(claim.replica_id, claim.size)
                    continue
                if source not in sources:
                    sources[source] = self.pool.get(view.sites[source])
                job = _Job(claim, view, source, sources[source], target, time.monotonic())
                self.progress.start(claim.replica_id, claim.path, claim.site, source, claim.size)
                self._inflight[claim.replica_id] = job
                pool.submit(self._run, job)
            # the dashboard's summaries, now the transfers have started (outside the claim's
            # transaction, which competing workers wait for)
            self.store.refresh_summaries({(c.representation_id, c.site) for c in claims})
        self._served = served
        return total

    def _run(self, job: _Job) -> None:
        """Runs in a pool thread: one transfer, its outcome handed to the main thread's queue."""
        try:
            outcome = self._transfer(job)
        except BaseException as exc:  # _transfer never raises; this keeps the main thread waiting for nothing
            outcome = failure_outcome(job.claim, job.project, job.source, exc, 0.0)
        self._done.put((job, outcome))

    def _collect(self, timeout: float) -> int:
        """Take finished transfers (waiting up to ``timeout`` for the first) and keep their outcomes."""
        try:
            item = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
        except queue.Empty:
            return 0
        n = 0
        while True:
            job, outcome = item
            self._inflight.pop(job.claim.replica_id, None)
            self._outcomes.append(self._result(outcome, job))
            n += 1
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return n

    def _transfer(self, job: _Job) -> Outcome:
        """Runs in a pool thread: one verified copy. Never raises."""
        claim, view = job.claim, job.project
        if job.cancel.is_set():  # stopped (or the lease was lost) before this transfer started
            return make_outcome(claim, view, "release", source=job.source)
        counter = self.progress.counter(claim.replica_id)

        def on_bytes(n: int) -> None:
            if job.cancel.is_set():
                raise TransferCancelled()
            counter(n)

        started = time.monotonic()
        try:
            src_spec, dst_spec = view.sites[job.source], view.sites[claim.site]
            job.target_path = dst_spec.resolve(claim.path)
            result = copy_verified(
                job.source_provider,
                src_spec.resolve(claim.path),
                job.target_provider,
                job.target_path,
                Expected(claim.size, claim.hash_algo, claim.hash),
                on_bytes,
                self.bandwidth.throttle(job.source, claim.site, job.source_provider, job.target_provider, job.cancel),
                target_seen=seen_of(claim),
                staged=True,  # committed by the target's flush() in _make_durable, before it is recorded
            )
        except TransferCancelled:
            return make_outcome(claim, view, "release", source=job.source)
        except Exception as raised:
            exc = self._diagnose(job, raised)  # the source copy gone or changed? (engine/sources.py)
            if not isinstance(exc, SitesyncError):
                log.exception("unexpected error transferring %s to %s", claim.path, claim.site)
            return failure_outcome(job.claim, job.project, job.source, exc, time.monotonic() - started)
        return make_outcome(
            claim, view, "present", source=job.source, nbytes=result.bytes, duration=result.duration, result=result
        )

    def _diagnose(self, job: _Job, exc: BaseException) -> BaseException:
        claim, view = job.claim, job.project
        return diagnose(
            exc,
            self.store,
            view.sites[job.source],
            job.source_provider,
            view.sites[job.source].resolve(claim.path),
            Expected(claim.size, claim.hash_algo, claim.hash),
            file_id=claim.file_id,
            project_id=claim.project_id,
            target=claim.site,
            actor=self.worker_id,
        )

    def _result(self, outcome: Outcome, job: _Job, *, shown: bool = True) -> Outcome:
        """Account for a finished transfer (``shown=False``: its progress was already shown as done)."""
        claim = job.claim
        if outcome.kind == "present":
            if shown:
                self.progress.finish(claim.replica_id, True, outcome.bytes)
            self._written[claim.replica_id] = (job.target_provider, job)
            self.report.transferred += 1
            self.report.bytes += outcome.bytes
            for site in (claim.site, job.source):
                self.health.succeeded((job.project.name, site))
            return outcome
        if outcome.error and outcome.kind != "source_lost" and outcome.unavailable_site in (None, claim.site):
            self._note_failed_write(job)  # (a lost source: nothing was written)
        if outcome.kind in ("retry", "failed"):
            if shown:
                self.progress.finish(claim.replica_id, False, 0)
            self.report.failed_attempts += 1
            self.report.failed_files += outcome.kind == "failed"
            log.warning("transfer of %s to %s failed (%s): %s", claim.path, claim.site, outcome.note, outcome.error)
            return outcome
        if shown:
            self.progress.released(claim.replica_id, claim.size)
        if outcome.unavailable_site:
            self.report.deferred += 1
            self.health.failed(
                (job.project.name, outcome.unavailable_site),
                outcome.error or "unavailable",
                site_backoff(job.project),
                condition=outcome.condition or "unreachable",
                started=job.started,
            )
        return outcome

    def _note_failed_write(self, job: _Job) -> None:
        """The write may have left a temporary file or upload behind: sweep its folder later."""
        spec = job.project.sites.get(job.claim.site)
        try:
            location = spec.resolve(job.claim.path) if spec is not None else None
        except SitesyncError:  # no place for it on the site: nothing was written
            return
        if location is not None:
            self.leftovers.failed_write((job.project.name, job.claim.site), _parent(location))

    # ------------------------------------------------------------------ database writes

    def _flush(self, force: bool = False) -> bool:
        """Write pending outcomes if due. Returns True if any of them put a file back in a queue."""
        if not self._outcomes:
            return False
        due = time.monotonic() - self._last_flush >= self.options.flush_seconds
        if not (force or due or len(self._outcomes) >= self.options.flush_count):
            return False
        batch = self._outcomes = self._make_durable(self._outcomes)
        self.store.record_outcomes(self.worker_id, batch)  # raises on DB outage: kept for the next try
        for o in batch:
            self._written.pop(o.replica_id, None)
        self._outcomes = []
        self._last_flush = time.monotonic()
        requeued = [o for o in batch if o.kind != "present"]
        for o in requeued:
            self._idle.discard((self._project_name(o.project_id), o.site))
            if o.kind == "source_lost" and o.source_site:  # the lost copy may be fetched again there
                self._idle.discard((self._project_name(o.project_id), o.source_site))
        return bool(requeued)

    def _make_durable(self, batch: list[Outcome]) -> list[Outcome]:
        """``flush()`` the targets of the batch's new copies before they are recorded (local_drive
        makes its staged copies durable and renames them here, and fsyncs their folders). A target
        whose flush fails fails its own copies (as ``errors.decide`` judges the flush's error), a
        copy the flush could not commit fails alone; the others are recorded."""
        written = {o.replica_id: w for o in batch if o.kind == "present" and (w := self._written.get(o.replica_id))}
        targets = {id(provider): provider for provider, _job in written.values()}
        failed: dict[int, Exception] = {}
        uncommitted: dict[tuple[int, str], Exception] = {}
        for key, provider in targets.items():
            try:
                for path, exc in (provider.flush() or {}).items():
                    uncommitted[(key, path)] = exc
            except Exception as exc:  # a provider bug must not hold back the other sites' outcomes
                failed[key] = exc
                log.warning("site %s: could not make new copies durable: %s", provider.site, exc)
        if not failed and not uncommitted:
            return batch
        out = []
        for o in batch:
            pair = written.get(o.replica_id)
            if pair is not None:
                provider, job = pair
                own = uncommitted.get((id(provider), job.target_path))
                problem = failed.get(id(provider)) or own
                if problem is not None:
                    self.report.transferred -= 1
                    self.report.bytes -= o.bytes
                    reason = (
                        str(problem) if isinstance(problem, SitesyncError) else f"{type(problem).__name__}: {problem}"
                    )
                    failure: Exception = StorageError(
                        f"the copy could not be made durable: {reason}", site=provider.site
                    )
                    if isinstance(problem, SiteUnavailableError):
                        failure = SiteUnavailableError(str(failure), site=provider.site)
                    elif problem is own and isinstance(problem, SitesyncError):
                        failure = problem  # the provider's own verdict on that copy (a file appeared at its target...)
                    o = self._result(
                        failure_outcome(job.claim, job.project, job.source, failure, o.duration), job, shown=False
                    )
            out.append(o)
        return out

    def _project_name(self, project_id: int) -> str:
        for name, pid in self._project_ids.items():
            if pid == project_id:
                return name
        return ""

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat < self.options.lease_seconds / 3:
            return
        self._last_heartbeat = time.monotonic()
        running = dict(self._inflight)
        if not running:
            return
        done = self.progress.in_flight_bytes()
        lost = self.store.renew_leases(
            self.worker_id, {rid: done.get(rid, 0) for rid in running}, self.options.lease_seconds
        )
        for rid in lost:
            log.info("lease on replica %d lost (re-published, reset or taken over); cancelling", rid)
            running[rid].cancel.set()

    def _finish_stale_removals(self) -> None:
        """Removals whose remover stopped are finished by the guarded removal (engine/removal.py)."""
        waiting = self.store.stale_removal_sites()
        if not waiting:
            return  # the usual case: no site is probed for nothing
        views = [(self._project_ids[v.name], v) for v in self._views.values() if v.name in self._project_ids]
        usable = {
            v.name: [s for s in v.reachable_sites if s in waiting.get(pid, ()) and self._site_usable(v, s)]
            for pid, v in views
        }
        finish_stale_removals(
            self.store, views, self.pool, self.worker_id, usable, alternative_closure(self.view.system)
        )

    def _shutdown(self) -> None:
        for job in self._inflight.values():
            job.cancel.set()
        deadline = time.monotonic() + self.options.stop_grace_seconds
        while self._inflight and time.monotonic() < deadline:
            self._collect(min(0.5, max(0.01, deadline - time.monotonic())))
        if self._inflight:
            log.error(
                "%d transfers did not stop within %.0fs; their leases will expire",
                len(self._inflight),
                self.options.stop_grace_seconds,
            )
        self._inflight.clear()
        for attempt in range(5):
            try:
                self._flush(force=True)
                break
            except Exception as exc:
                log.warning("could not write final outcomes (%s); retrying", exc)
                time.sleep(min(5.0, 0.5 * 2**attempt))
        for name, step in self.steps.items():  # a step holding threads (a watcher) may end them
            close = getattr(step, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("closing worker step %s failed", name)
        self.pool.close()


def _parent(path: str) -> str:
    """The folder of a resolved path (``/`` or ``\\`` separated)."""
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut] if cut > 0 else path


def run_until_signalled(worker: Worker, signals: Iterable[int]) -> RunReport:
    """Run ``worker`` in this thread; the given signals stop it cleanly."""
    import signal

    previous = {}

    def handler(signum: int, _frame: object) -> None:
        log.info("signal %d received: stopping", signum)
        worker.stop()

    for sig in signals:
        previous[sig] = signal.signal(sig, handler)
    try:
        return worker.run()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["SYNC_EXIT_CODES", "RunReport", "SiteUnavailableError", "Worker", "WorkerOptions", "new_worker_id"]
