"""Real worker processes: SIGKILL in the middle of a large copy, SIGTERM stopping cleanly, and two
workers sharing one PostgreSQL queue without transferring any file twice."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sitesync.hashing import hash_file
from tests.conftest import SITE_ID, Studio, assert_site_states_consistent, make_studio


def start_worker(studio: Studio, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sitesync", "worker", "--log-level", "warning", *args],
        env=studio.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def replica_statuses(studio: Studio, rep: int) -> collections.Counter[tuple[str, str]]:
    detail = studio.client.status(representation=rep)
    return collections.Counter((r["site"], r["status"]) for f in detail["files"] for r in f["replicas"])


@pytest.mark.slow
def test_sigkill_mid_transfer_leaves_no_partial_file_and_recovers(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    big = studio.studio_file("show/plates/big.raw", size=1)
    with open(big, "wb") as fh:  # 768 MiB, written in chunks so memory stays flat
        chunk = os.urandom(8 * 1024 * 1024)
        for _ in range(96):
            fh.write(chunk)
    small = [studio.studio_file(f"show/plates/small.{i}.raw", size=64 * 1024) for i in range(20)]
    rep = studio.publish([big, *small], site="studio", product="plateMain", name="raw")
    studio.client.download(rep)
    final = studio.local_path("show/plates/big.raw")

    proc = start_worker(studio, "--lease", "600", "--concurrency", "2")  # the lease does not free it
    try:

        def partial():
            return (
                any(p.name.endswith(".part") and p.stat().st_size > 0 for p in final.parent.glob(".sitesync-big.raw.*"))
                if final.parent.exists()
                else False
            )

        assert wait_for(partial, timeout=60), "the worker never started writing the large file"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not final.exists(), "a partial file appeared under the final name"
    assert replica_statuses(studio, rep)[(SITE_ID, "in_progress")] >= 1

    report = studio.sync()  # the killed worker was of this machine: its files are taken back at once
    assert report.transferred >= 1
    counts = replica_statuses(studio, rep)
    assert counts[(SITE_ID, "present")] == 21 and counts[(SITE_ID, "in_progress")] == 0
    assert hash_file(str(final)) == hash_file(str(big))
    assert not list(final.parent.glob(".sitesync-*")), "temporary files were left behind"
    expired = [e for e in studio.client.store.events(representation_id=rep, limit=1000) if e.kind == "lease_expired"]
    assert expired and all("is no longer running" in (e.message or "") for e in expired)


def test_sigterm_stops_worker_cleanly(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    proc = start_worker(studio)
    try:
        rep = studio.publish([studio.write("t.bin", b"term")])
        assert wait_for(lambda: replica_statuses(studio, rep)[("studio", "present")] == 1, timeout=20, interval=0.05), (
            "the running worker did not pick up new work (wake-up or poll failed)"
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "Traceback" not in proc.stderr.read()


def asleep_for_an_hour(log: Path) -> bool:
    """The worker's debug log says it is idle now with (about) an hour to sleep: its latest idle
    sleep or wake-up is a sleep of at least 3000 s. From then on only a wake-up, not its next poll,
    can make it pick up new work within the test's timeouts."""
    text = log.read_text(errors="replace")
    marks = re.findall(r"idle: sleeping up to (\d+)s|woken up", text)
    return bool(marks) and marks[-1] != "" and float(marks[-1]) >= 3000


def test_running_worker_wakes_at_once_on_new_work(sqlite_studio: Studio, tmp_path: Path) -> None:
    studio = sqlite_studio
    studio.client.settings_set("loop_delay", 3600, project="show")
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sitesync", "worker", "--log-level", "debug"],
            env=studio.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: asleep_for_an_hour(log), timeout=60, interval=0.02), log.read_text()
        rep = studio.publish([studio.write("wake.bin", b"wake up")])
        # asleep for an hour: finding the work at all proves the wake-up
        assert wait_for(lambda: replica_statuses(studio, rep)[("studio", "present")] == 1, timeout=60, interval=0.02)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert "woken up" in log.read_text()


def test_worker_on_another_machine_wakes_at_once_through_postgres(tmp_path: Path, pg_url: str, home: Path) -> None:
    """Two installations sharing one PostgreSQL queue, as two machines would: work requested on one
    wakes the idle worker of the other at once (LISTEN/NOTIFY), not at its next hourly poll."""
    studio = make_studio(tmp_path, pg_url, home, loop_delay=3600)
    other_home = tmp_path / "other-machine"
    other_env = {**studio.env(), "SITESYNC_HOME": str(other_home)}
    other_local = tmp_path / "other-local"
    subprocess.run(
        [sys.executable, "-m", "sitesync", "settings", "set", "--local", "local_root", str(other_local)],
        env=other_env,
        check=True,
        capture_output=True,
    )
    log = tmp_path / "other-worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sitesync", "worker", "--log-level", "debug"],
            env=other_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        rep = studio.publish([studio.studio_file("show/a/first.bin", b"first")], site="studio", product="first")
        studio.client.download(rep)  # the other machine's worker looks once when it starts listening
        assert wait_for(lambda: replica_statuses(studio, rep)[(SITE_ID, "present")] == 1, timeout=60, interval=0.05)
        # idle now, with an hour to sleep; this machine has no worker to wake over loopback
        assert wait_for(lambda: asleep_for_an_hour(log), timeout=60, interval=0.02), log.read_text()
        rep = studio.publish([studio.studio_file("show/a/second.bin", b"second")], site="studio", product="second")
        studio.client.download(rep)
        assert wait_for(lambda: replica_statuses(studio, rep)[(SITE_ID, "present")] == 1, timeout=60, interval=0.02)
        assert (other_local / "work" / "show/a/second.bin").read_bytes() == b"second"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        studio.client.close()
    err = log.read_text()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "no wake notifications" not in err, err
    assert "woken up" in err


@pytest.mark.slow
def test_two_workers_share_one_postgres_queue_exactly_once(tmp_path: Path, pg_url: str, home: Path) -> None:
    studio = make_studio(tmp_path, pg_url, home)
    try:
        files = [studio.studio_file(f"show/seq/f.{i:04d}.exr", size=256 * 1024) for i in range(300)]
        rep = studio.publish(files, site="studio", product="renderMain", name="exr")
        studio.client.download(rep)
        workers = [start_worker(studio, "--batch-size", "4", "--concurrency", "2") for _ in range(2)]
        try:
            assert wait_for(
                lambda: replica_statuses(studio, rep)[(SITE_ID, "present")] == 300, timeout=120, interval=0.2
            ), replica_statuses(studio, rep)
        finally:
            for w in workers:
                w.send_signal(signal.SIGTERM)
            codes = [w.wait(timeout=30) for w in workers]
        logs = [w.stderr.read() for w in workers]
        assert codes == [0, 0], logs
        assert not any("loop error" in log for log in logs), logs  # no deadlock or other retried failure
        assert_site_states_consistent(studio.client)
        events = [e for e in studio.client.store.events(representation_id=rep, limit=100_000) if e.kind == "transfer"]
        per_file = collections.Counter((e.file_id, e.site) for e in events)
        assert len(per_file) == 300 and set(per_file.values()) == {1}, "a file was transferred twice"
        actors = collections.Counter(e.actor for e in events)
        assert len(actors) == 2, f"both workers should have taken part: {actors}"
        for f in files[::50]:
            rel = f.relative_to(studio.studio_root)
            assert hash_file(str(studio.local_path(str(rel)))) == hash_file(str(f))
    finally:
        studio.client.close()
