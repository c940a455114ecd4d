"""The worker: claims work under leases, runs verified transfers in a thread pool, keeps leases
alive with progress, writes outcomes in batches, and never dies.

One main thread talks to the database (claims, heartbeats, outcome batches, lease expiry); the
pool's threads only move bytes. An error in one file, site or project is recorded and the others
go on; an unexpected error in the loop is logged and the loop continues after a short pause.
A site that cannot be reached is left alone for a growing while, without burning files' attempts.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
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

from sitesync.engine.planner import QueuePlan, choose_source, source_preference, work_plan, worker_paused
from sitesync.engine.progress import Progress
from sitesync.engine.transfer import Expected, copy_verified
from sitesync.engine.wake import WakeListener
from sitesync.errors import Disposition, SitesyncError, SiteUnavailableError, StorageError, disposition
from sitesync.providers.base import Provider
from sitesync.sites import MachineView, ProjectView, ProviderPool
from sitesync.state.records import ClaimedReplica, Outcome
from sitesync.state.store import StateStore
from sitesync.workflows.preferred import PreferredContent

if TYPE_CHECKING:
    from sitesync.state.notify import NotificationRelay

log = logging.getLogger("sitesync.worker")

SITE_RETRY_FIRST = 15.0
SITE_RETRY_MAX = 600.0
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
class RunReport:
    transferred: int = 0
    failed_attempts: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Job:
    claim: ClaimedReplica
    project: ProjectView
    source: str
    source_provider: Provider
    target_provider: Provider
    cancel: threading.Event = field(default_factory=threading.Event)


@dataclass
class _SiteHealth:
    until: float
    delay: float
    reason: str


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
        self.progress = Progress()
        self._stop = threading.Event()
        self._unavailable: dict[tuple[str, str], _SiteHealth] = {}
        self._checked: set[tuple[str, str]] = set()
        self._idle: set[tuple[str, str]] = set()
        self._inflight: dict[int, _Job] = {}  # replica id -> claimed job, queued or running in the pool
        self._done: queue.SimpleQueue[tuple[_Job, Outcome]] = queue.SimpleQueue()  # filled by pool threads
        self._outcomes: list[Outcome] = []
        self._written: dict[int, Provider] = {}  # replica id -> target provider of a copy not yet recorded
        self._views: dict[str, ProjectView] = {}
        self._project_ids: dict[str, int] = {}
        self._pauses: set[tuple[str, str]] = set()
        self._last_settings_check = 0.0
        self._last_flush = time.monotonic()
        self._last_heartbeat = time.monotonic()
        self._last_expiry = 0.0
        self._idle_since = time.monotonic()
        self._avg_size = 1024 * 1024
        self.report = RunReport()
        self.preferred = PreferredContent(store, self.worker_id, paced=not self.options.once)

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
        return {key: h.reason for key, h in list(self._unavailable.items())}

    # ------------------------------------------------------------------ main loop

    def run(self) -> RunReport:
        started = time.monotonic()
        failures = 0
        settings_loaded = False
        if self.notifications is not None:
            self.notifications.start()
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
        if self.notifications is not None:
            self.notifications.close()
        self.report.seconds = time.monotonic() - started
        return self.report

    def _step(self, pool: cf.ThreadPoolExecutor) -> int | None:
        """One turn of the loop. Returns how many files were claimed, or None if it did not look."""
        now = time.monotonic()
        self._refresh()
        if self.preferred.step(self.view, self._views, self._project_ids, self.options.targets):
            self._idle.clear()  # preferred-content rules queued work
        if now - self._last_expiry >= self.options.lease_seconds / 2:
            self._last_expiry = now
            expired = self.store.expire_leases()
            if expired:
                log.warning("returned %d transfers of stopped workers to the queue", expired)
                self._idle.clear()
            self._finish_stale_removals()
        if self.wake is not None and self.wake.wait(0):
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

    def _claim_target(self) -> int:
        """How many files to hold leases on: about BUFFER_BYTES of work, at least two per thread."""
        per_file = max(1, self._avg_size)
        wanted = int(BUFFER_BYTES // per_file)
        return max(self.options.concurrency * 2, min(self.options.batch_size, wanted))

    def _sleep(self) -> None:
        delay = min((v.settings.loop_delay for v in self._views.values()), default=60.0)
        soonest_site = min((h.until for h in self._unavailable.values()), default=None)
        if soonest_site is not None:
            delay = max(0.05, min(delay, soonest_site - time.time()))
        woken = self.wake.wait(delay) if self.wake is not None else self._stop.wait(delay)
        if woken:
            log.debug("woken up")
            self._pauses = self.store.pauses()
        self._idle.clear()

    # ------------------------------------------------------------------ settings and plans

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_settings_check < self.options.settings_check_seconds:
            return
        self._last_settings_check = now
        version = self.store.settings_version()
        if force or version != self.view.version:
            self.view = self._load_view()
            self._checked.clear()
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
        key = (project.name, site)
        health = self._unavailable.get(key)
        if health is not None and health.until > time.time():
            return False
        if key in self._checked and health is None:
            return True
        try:
            self.pool.get(project.sites[site]).check()
        except SitesyncError as exc:
            self._mark_unavailable(project.name, site, str(exc))
            return False
        except Exception as exc:  # a provider bug must not stop the worker
            self._mark_unavailable(project.name, site, f"{type(exc).__name__}: {exc}")
            return False
        if health is not None:
            log.info("site %s is reachable again", site)
            self.store.add_event("site_available", self.worker_id, site=site, message=f"project {project.name}")
            del self._unavailable[key]
        self._checked.add(key)
        return True

    def _mark_unavailable(self, project: str, site: str, reason: str) -> None:
        key = (project, site)
        old = self._unavailable.get(key)
        delay = SITE_RETRY_FIRST if old is None else min(SITE_RETRY_MAX, old.delay * 2)
        self._unavailable[key] = _SiteHealth(time.time() + delay, delay, reason)
        self._checked.discard(key)
        if old is None:
            log.warning("site %s unavailable for project %s (retrying in %.0fs): %s", site, project, delay, reason)
            try:
                self.store.add_event("site_unavailable", self.worker_id, site=site, message=reason[:2000])
            except Exception:  # the history is best effort here; the loop handles DB outages
                log.debug("could not record site_unavailable event", exc_info=True)

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
        for view, plan in self.plans():
            key = (plan.project, plan.target)
            if key in self._idle:
                continue
            if capacity - total <= 0:
                break
            project_id = self._project_ids.get(plan.project)
            if project_id is None:
                continue
            claims = self.store.claim(
                project_id,
                plan.target,
                plan.sources,
                self.worker_id,
                min(self.options.batch_size, capacity - total),
                self.options.lease_seconds,
                refresh_summaries=False,
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
                    self._outcomes.append(self._outcome(claim, view, "release", error=None))
                    self.progress.released(claim.replica_id, claim.size)
                    continue
                if source not in sources:
                    sources[source] = self.pool.get(view.sites[source])
                job = _Job(claim, view, source, sources[source], target)
                self.progress.start(claim.replica_id, claim.path, claim.site, source, claim.size)
                self._inflight[claim.replica_id] = job
                pool.submit(self._run, job)
            # the dashboard's summaries, now the transfers have started (outside the claim's
            # transaction, which competing workers wait for)
            self.store.refresh_summaries({(c.representation_id, c.site) for c in claims})
        return total

    def _run(self, job: _Job) -> None:
        """Runs in a pool thread: one transfer, its outcome handed to the main thread's queue."""
        try:
            outcome = self._transfer(job)
        except BaseException as exc:  # _transfer never raises; this keeps the main thread waiting for nothing
            outcome = self._outcome(
                job.claim, job.project, "error", source=job.source, error=f"{type(exc).__name__}: {exc}"
            )
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
            return self._outcome(claim, view, "release", source=job.source)
        counter = self.progress.counter(claim.replica_id)

        def on_bytes(n: int) -> None:
            if job.cancel.is_set():
                raise TransferCancelled()
            counter(n)

        started = time.monotonic()
        try:
            src_spec, dst_spec = view.sites[job.source], view.sites[claim.site]
            result = copy_verified(
                job.source_provider,
                src_spec.resolve(claim.path),
                job.target_provider,
                dst_spec.resolve(claim.path),
                Expected(claim.size, claim.hash_algo, claim.hash),
                on_bytes,
            )
        except TransferCancelled:
            return self._outcome(claim, view, "release", source=job.source)
        except Exception as exc:
            if not isinstance(exc, SitesyncError):
                log.exception("unexpected error transferring %s to %s", claim.path, claim.site)
                message = f"{type(exc).__name__}: {exc}"
            else:
                message = str(exc)
            if disposition(exc) is Disposition.SKIP_SITE:
                site = exc.site if isinstance(exc, StorageError) and exc.site else claim.site
                return self._outcome(claim, view, "release", source=job.source, error=message, unavailable=site)
            return self._outcome(
                claim, view, "error", source=job.source, error=message, duration=time.monotonic() - started
            )
        return self._outcome(claim, view, "present", source=job.source, nbytes=result.bytes, duration=result.duration)

    def _outcome(
        self,
        claim: ClaimedReplica,
        view: ProjectView,
        kind: str,
        *,
        source: str | None = None,
        error: str | None = None,
        nbytes: int = 0,
        duration: float = 0.0,
        unavailable: str | None = None,
    ) -> Outcome:
        spec = view.sites.get(claim.site)
        outcome = Outcome(
            replica_id=claim.replica_id,
            file_id=claim.file_id,
            representation_id=claim.representation_id,
            project_id=claim.project_id,
            site=claim.site,
            kind=kind,
            source_site=source,
            bytes=nbytes,
            duration=duration,
            error=error,
            retry_count=view.settings.retry_count,
            retry_backoff=view.settings.retry_backoff if kind == "error" else 0.0,
            alternatives=spec.alternatives if spec else (),
            unavailable_site=unavailable,
        )
        return outcome

    def _result(self, outcome: Outcome, job: _Job) -> Outcome:
        claim = job.claim
        if outcome.kind == "present":
            self._written[claim.replica_id] = job.target_provider
            self.progress.finish(claim.replica_id, True, outcome.bytes)
            self.report.transferred += 1
            self.report.bytes += outcome.bytes
        elif outcome.kind == "error":
            self.progress.finish(claim.replica_id, False, 0)
            self.report.failed_attempts += 1
            log.warning("transfer of %s to %s failed: %s", claim.path, claim.site, outcome.error)
        else:
            self.progress.released(claim.replica_id, claim.size)
            if outcome.unavailable_site:
                self._mark_unavailable(job.project.name, outcome.unavailable_site, outcome.error or "unavailable")
        return outcome

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
        return bool(requeued)

    def _make_durable(self, batch: list[Outcome]) -> list[Outcome]:
        """``flush()`` the targets of the batch's new copies (local_drive fsyncs their folders here,
        once per folder) before they are recorded. A target whose flush fails fails its own copies;
        the others are recorded."""
        targets = {id(p): p for o in batch if o.kind == "present" and (p := self._written.get(o.replica_id))}
        failed: dict[int, str] = {}
        for key, provider in targets.items():
            try:
                provider.flush()
            except Exception as exc:  # a provider bug must not hold back the other sites' outcomes
                failed[key] = str(exc) if isinstance(exc, SitesyncError) else f"{type(exc).__name__}: {exc}"
                log.warning("site %s: could not make new copies durable: %s", provider.site, failed[key])
        if not failed:
            return batch
        out = []
        for o in batch:
            provider = self._written.get(o.replica_id) if o.kind == "present" else None
            if provider is not None and id(provider) in failed:
                self.report.transferred -= 1
                self.report.bytes -= o.bytes
                self.report.failed_attempts += 1
                o = dataclasses.replace(
                    o, kind="error", error=f"the copy could not be made durable: {failed[id(provider)]}"
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
        for view in self._views.values():
            sites = [s for s in view.reachable_sites if self._site_usable(view, s)]
            stale = self.store.claim_stale_removals(sites, self.worker_id, self.options.lease_seconds)
            by_site: dict[tuple[str, int], list[int]] = {}
            for rid, _fid, rep_id, site, path in stale:
                spec = view.sites[site]
                try:
                    self.pool.get(spec).delete(spec.resolve(path))
                except Exception as exc:
                    log.warning("could not finish removing %s from %s: %s", path, site, exc)
                    continue
                by_site.setdefault((site, rep_id), []).append(rid)
            for (site, rep_id), ids in by_site.items():
                # the site's alternatives are the same storage: their records of these copies go too
                alternatives = view.sites[site].alternatives
                self.store.finish_remove(ids, rep_id, site, self.worker_id, alternatives=alternatives)

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
        self.pool.close()


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


__all__ = ["RunReport", "SiteUnavailableError", "Worker", "WorkerOptions", "new_worker_id"]
