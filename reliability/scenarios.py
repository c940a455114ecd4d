"""The reliability scenarios. Each takes a scratch folder and sizes, runs for real, and returns a
``Result`` counting what was lost, corrupt, stuck or transferred twice. The tests run them small;
``reliability/run.py`` runs them large and writes RELIABILITY.md."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from reliability.harness import (
    SITE_ID,
    Env,
    ThrowawayPostgres,
    check_site,
    failure_count,
    files_queued,
    make_env,
    publish_on_studio,
    run_cli,
    start_worker,
    stop,
    transfer_counts,
    wait_until,
    write_files,
)


@dataclass
class Result:
    scenario: str
    trials: int
    faults: str
    files: int
    lost: int = 0
    corrupt: int = 0
    stuck: int = 0
    double: int = 0
    converged: bool = True
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.converged and not (self.lost or self.corrupt or self.stuck or self.double)


def sigkill_trials(work: Path, *, trials: int, files: int, size: int, seed: int = 1, lease: float = 1.0) -> Result:
    """Kill a worker with SIGKILL at a random moment of a sync (once a random number of its files has
    left the queue), check nothing partial or corrupt is under a final name, restart, and check
    every file converges to present and verified."""
    rng = random.Random(seed)
    result = Result("SIGKILL a worker at a random moment", trials, "SIGKILL", files * trials)
    started = time.monotonic()
    mid_transfer = unfinished = 0
    for trial in range(trials):
        env = make_env(work / f"trial{trial}")
        try:
            rep = publish_on_studio(env, files, size)
            env.client.download(rep)
            worker = start_worker(env, "--lease", str(lease), "--concurrency", "4", "--batch-size", "64")
            # a random point of the sync's progress, not of wall time: the interpreter's start-up alone
            # can take a second on a loaded machine, and a small sync can be over within a second
            point = rng.randint(1, files - 1)
            wait_until(
                lambda env=env, rep=rep, point=point: files_queued(env, rep, SITE_ID) <= files - point,
                timeout=120,
                interval=0.005,
            )
            time.sleep(rng.uniform(0.0, 0.05))
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            after_kill = check_site(env, rep, SITE_ID, env.local_root / "work", live_leases_ok=True)
            result.corrupt += after_kill.corrupt
            result.lost += after_kill.lost
            mid_transfer += after_kill.statuses.get("in_progress", 0) > 0
            unfinished += after_kill.present < files
            time.sleep(lease + 0.2)
            sync = run_cli(env, "sync", "--once", "--json")
            if sync.returncode != 0:
                result.notes.append(f"trial {trial}: recovery sync failed: {sync.stderr.strip()[:200]}")
            final = check_site(env, rep, SITE_ID, env.local_root / "work")
            result.lost += final.lost + final.not_present
            result.corrupt += final.corrupt
            result.stuck += final.stuck
            if final.leftovers:
                result.notes.append(f"trial {trial}: {final.leftovers} temporary files left")
            if final.present != files:
                result.converged = False
            retransferred = sum(n - 1 for n in transfer_counts(env, rep).values() if n > 1)
            if retransferred:
                result.notes.append(f"trial {trial}: {retransferred} files copied again after the kill (expected)")
        finally:
            env.close()
    result.notes.insert(
        0,
        f"{mid_transfer} of {trials} kills hit while transfers were leased; {unfinished} of {trials} left "
        "files to finish after the restart",
    )
    result.seconds = time.monotonic() - started
    return result


def transient_faults(work: Path, *, files: int, size: int, rate: float = 0.2, seed: int = 7) -> Result:
    """20 % of reads and writes fail transiently (some as timeouts); every file must converge within
    the retry budget. A second project whose site always refuses (permission denied) ends failed
    with the error text, without holding up the first."""
    result = Result("transient faults on reads and writes", 1, f"{rate:.0%} transient (1/4 as timeouts)", files)
    started = time.monotonic()
    env = make_env(work, retry_count=12)
    try:
        c = env.client
        c.add_site(
            "flaky",
            "faulty",
            [f"work={work / 'flaky'}"],
            {
                "inner_options": {"create_roots": True},
                "seed": seed,
                "transient_rate": rate * 0.75,
                "timeout_rate": rate * 0.25,
                "timeout_seconds": 0.01,
            },
        )
        c.add_site(
            "locked",
            "faulty",
            [f"work={work / 'locked'}"],
            {"inner_options": {"create_roots": True}, "permission_rate": 1.0},
        )
        c.settings_set("remote_site", "flaky", project=env.project)
        c.create_project("other", {"work": {"any": str(env.studio_root)}})
        for key, value in {
            "active_site": "local",
            "remote_site": "locked",
            "retry_backoff": 0,
            "retry_count": 3,
        }.items():
            c.settings_set(key, value, project="other")
        srcs = write_files(work / "in", files, size, seed=seed)
        rep = c.publish(
            env.project, folder="f", product="p", version=1, name="n", files=[str(p) for p in srcs]
        ).representation_id
        blocked = c.publish(
            "other", folder="f", product="q", version=1, name="n", files=[str(srcs[0])]
        ).representation_id
        c.sync_once()
        check = check_site(env, rep, "flaky", work / "flaky")
        result.lost = check.lost + check.not_present
        result.corrupt = check.corrupt
        result.stuck = check.stuck
        result.converged = check.present == files
        faults = failure_count(env, rep)
        result.notes.append(f"{faults} failed attempts injected and retried")
        detail = c.status(representation=blocked)
        locked = next(r for r in detail["files"][0]["replicas"] if r["site"] == "locked")
        if locked["status"] != "failed" or "permission denied" not in (locked["last_error"] or ""):
            result.converged = False
            result.notes.append(f"permanent fault not reported as failed: {locked}")
        else:
            result.notes.append("permanent fault (permission denied) ended failed with its error text")
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def corrupt_reads(work: Path, *, files: int, size: int, seed: int = 3) -> Result:
    """Reads that return flipped bytes or end early: verification must catch every one, nothing
    damaged may land under a final name, and retries must converge."""
    result = Result("flipped bytes and truncated reads", 1, "10% flipped, 10% truncated", files)
    started = time.monotonic()
    env = make_env(work, retry_count=12)
    try:
        c = env.client
        c.add_site(
            "noisy",
            "faulty",
            [f"work={work / 'noisy'}"],
            {
                "inner_options": {"create_roots": True},
                "seed": seed,
                "flip_rate": 0.1,
                "truncate_rate": 0.1,
                "operations": ["read"],
            },
        )
        srcs = write_files(work / "in", files, size, seed=seed)
        rep = c.publish(
            env.project, folder="f", product="p", version=1, name="n", files=[str(p) for p in srcs], site="noisy"
        ).representation_id
        c.download(rep)
        c.sync_once()
        check = check_site(env, rep, SITE_ID, env.local_root / "work")
        result.lost, result.corrupt, result.stuck = check.lost + check.not_present, check.corrupt, check.stuck
        result.converged = check.present == files
        result.notes.append(f"{failure_count(env, rep)} damaged reads rejected by verification")
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def disk_full(work: Path, *, small_files: int = 5) -> Result:
    """The target file system fills up (a real 2 MiB tmpfs): a condition of the site, not of the
    file: the transfer is put back with a clear error and its attempts kept, the site is left alone
    for a while, the temporary file is removed, nothing partial appears, smaller files still land."""
    result = Result("disk full on the target (real tmpfs)", 1, "ENOSPC", small_files + 1)
    started = time.monotonic()
    env = make_env(work, retry_count=1)
    mount = env.local_root
    mount.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        folder = env.studio_root / "rel" / "full"
        big = write_files(folder / "big", 1, 3 * 1024 * 1024)
        small = write_files(folder / "small", small_files, 16 * 1024)
        rep = env.client.publish(
            env.project,
            folder="full",
            product="p",
            version=1,
            name="n",
            files=[str(p) for p in big + small],
            site="studio",
        ).representation_id
        env.client.download(rep)
        env.client.sync_once()
        check = check_site(env, rep, SITE_ID, mount / "work")
        result.corrupt, result.stuck = check.corrupt, check.stuck
        result.lost = check.lost
        leftovers = [
            p
            for p in mount.rglob("*")
            if p.is_file() and (p.name.startswith(".sitesync-") or p.name.startswith("f.00000"))
        ]
        big_states = [
            next(r for r in f["replicas"] if r["site"] == SITE_ID)
            for f in env.client.status(representation=rep)["files"]
            if "/big/" in f["path"]
        ]
        ok = (
            big_states[0]["status"] == "queued"
            and big_states[0]["attempts"] == 0
            and "no space left" in big_states[0]["last_error"]
            and check.present == small_files
            and not [p for p in leftovers if p.name.startswith(".sitesync-")]
            and not (mount / "work" / "rel" / "full" / "big" / "f.00000.bin").exists()
        )
        result.converged = ok
        result.notes.append(
            f"big file: {big_states[0]['status']} ({big_states[0]['attempts']} attempts spent): "
            f"{big_states[0]['last_error']}"
        )
    finally:
        env.close()
        subprocess.run(["umount", str(mount)], check=False)
    result.seconds = time.monotonic() - started
    return result


def concurrent_workers_pg(work: Path, pg_url: str, *, workers: int, files: int, size: int) -> Result:
    """Several worker processes on one PostgreSQL queue: no file transferred twice, none lost."""
    result = Result(f"{workers} workers on one PostgreSQL queue", 1, "contention", files)
    started = time.monotonic()
    env = make_env(work, db_url=pg_url)
    procs = []
    try:
        rep = publish_on_studio(env, files, size)
        env.client.download(rep)
        procs = [start_worker(env, "--batch-size", "8", "--concurrency", "2") for _ in range(workers)]
        result.converged = wait_until(
            lambda: check_site(env, rep, SITE_ID, env.local_root / "work", live_leases_ok=True).present == files,
            timeout=300,
            interval=0.5,
        )
    finally:
        codes = [stop(p) for p in procs]
        if any(codes):
            result.notes.append(f"worker exit codes {codes}")
    try:
        check = check_site(env, rep, SITE_ID, env.local_root / "work")
        counts = transfer_counts(env, rep)
        result.double = sum(n - 1 for n in counts.values() if n > 1)
        result.lost, result.corrupt, result.stuck = check.lost + check.not_present, check.corrupt, check.stuck
        actors = {e.actor for e in env.client.store.events(representation_id=rep, kinds=["transfer"], limit=10_000_000)}
        result.notes.append(f"{len(actors)} workers took part")
    finally:
        env.close()
    result.seconds = time.monotonic() - started
    return result


def postgres_restart(work: Path, *, files: int, size: int, workers: int = 2) -> Result:
    """PostgreSQL restarts in the middle of a run: workers reconnect and finish, no outcome lost."""
    result = Result("PostgreSQL restarted mid-run", 1, "server restart", files)
    started = time.monotonic()
    pg = ThrowawayPostgres()
    env: Env | None = None
    procs = []
    try:
        env = make_env(work, db_url=pg.url)
        rep = publish_on_studio(env, files, size)
        env.client.download(rep)
        worker_args = ("--batch-size", "16", "--concurrency", "2")
        procs = [start_worker(env, *worker_args, log=work / "workers.log") for _ in range(workers - 1)]
        base = env.local_root / "work"
        wait_until(lambda: check_site(env, rep, SITE_ID, base, live_leases_ok=True).present >= files // 10, timeout=120)
        before = check_site(env, rep, SITE_ID, base, live_leases_ok=True).present
        pg.stop()
        # one more worker starts while the server is down (a service booting before its database)
        late_log = work / "late-worker.log"
        procs.append(start_worker(env, *worker_args, log=late_log))
        waited = wait_until(lambda: late_log.exists() and "trying again" in late_log.read_text(), timeout=60)
        time.sleep(1.0)
        pg.start()
        result.notes.append(f"restarted with {before}/{files} present")
        if waited:
            result.notes.append("a worker started while the server was down waited for it")
        else:
            result.notes.append("the worker started during the outage never reported waiting for the server")
        env.client.store.engine.dispose()
        result.converged = wait_until(
            lambda: check_site(env, rep, SITE_ID, base, live_leases_ok=True).present == files, timeout=300, interval=0.5
        )
        alive = [p.poll() is None for p in procs]
        if not all(alive):
            result.converged = False
            result.notes.append("a worker died during the outage")
        if not waited:
            result.converged = False
    finally:
        for p in procs:
            stop(p)
    try:
        assert env is not None
        check = check_site(env, rep, SITE_ID, env.local_root / "work")
        counts = transfer_counts(env, rep)
        result.double = sum(n - 1 for n in counts.values() if n > 1)
        result.lost, result.corrupt, result.stuck = check.lost + check.not_present, check.corrupt, check.stuck
        missing_events = files - len(counts)
        if missing_events:
            result.lost += missing_events
            result.notes.append(f"{missing_events} transfers without a recorded outcome")
    finally:
        if env is not None:
            env.close()
        pg.destroy()
    result.seconds = time.monotonic() - started
    return result
