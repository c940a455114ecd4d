"""Faults handled on time: retries wait for retry_backoff (not loop_delay), dead workers' leases are
reclaimed at once on their own machine and after a heartbeat timeout elsewhere, `sync --once`
exits with a code that tells the truth, and the PostgreSQL LISTEN thread closes at once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from sitesync.engine.liveness import HEARTBEAT_TIMEOUT_SECONDS, boot_id, reclaim_dead_leases, this_host
from sitesync.state import schema as s
from tests.conftest import SITE_ID, Studio
from tests.test_crash_and_workers import wait_for


def statuses(studio: Studio, rep: int, site: str) -> list[str]:
    detail = studio.client.status(representation=rep)
    return [r["status"] for f in detail["files"] for r in f["replicas"] if r["site"] == site]


def flaky_remote(studio: Studio, **options: Any) -> None:
    """The project's remote site is a `faulty` wrapper over a local folder."""
    studio.client.add_site(
        "flaky",
        "faulty",
        [f"work={studio.root / 'flaky'}"],
        {"inner": "local_drive", "inner_options": {"create_roots": True}, **options},
    )
    studio.client.settings_set("remote_site", "flaky", project="show")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def lease_to(studio: Studio, owner: str, site: str = "studio") -> list[int]:
    store = studio.client.store
    claims = store.claim(store.project("show").id, site, [SITE_ID], owner, 100, 3600)
    assert claims, "nothing to lease"
    return [c.replica_id for c in claims]


# ---------------------------------------------------------------------------- 2. retries on time


def test_a_failed_file_is_retried_after_retry_backoff_not_loop_delay(studio: Studio) -> None:
    c = studio.client
    c.settings_set("loop_delay", 3600, project="show")
    c.settings_set("retry_backoff", 2, project="show")
    c.settings_set("retry_count", 5, project="show")
    flaky_remote(studio, transient_rate=1.0, operations=["write"])
    rep = studio.publish([studio.write("retry.bin", b"retry me")])
    worker = c.worker()
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert wait_for(lambda: c.store.events(kinds=["failure"], limit=1), 30), "the first attempt never failed"
        c.settings_set("system.sites.flaky.options.transient_rate", 0)  # the fault goes away
        assert wait_for(lambda: statuses(studio, rep, "flaky") == ["present"], 30), statuses(studio, rep, "flaky")
    finally:
        worker.stop()
        thread.join(30)
        if worker.wake is not None:
            worker.wake.close()
    # present although loop_delay is an hour: the retry came retry_backoff (2 s) after the failure.
    # A loaded machine may fail once or twice more (4 s, 8 s) before the worker sees the fault gone.
    failures = sorted(e.message or "" for e in c.store.events(kinds=["failure"], limit=10))
    assert failures and failures[0].startswith("attempt 1/5, next in 2s: "), failures
    assert not any("giving up" in m for m in failures), failures


def test_next_due_is_the_earliest_retry_and_uses_its_index(studio: Studio) -> None:
    c, store = studio.client, studio.client.store
    flaky_remote(studio, transient_rate=1.0, operations=["write"])
    c.settings_set("retry_backoff", 100, project="show")
    studio.publish([studio.write("a.bin", b"a")])
    studio.publish([studio.write("b.bin", b"b")])
    before = time.time()
    studio.sync()
    pid = store.project("show").id
    due = store.next_due({(pid, "flaky"), (pid, "studio")})
    assert due is not None and before + 100 <= due <= time.time() + 100
    assert store.next_due({(pid, "studio")}) is None
    if not store.is_postgres:
        q = """EXPLAIN QUERY PLAN SELECT min(next_attempt_at) FROM replicas WHERE project_id = 1 AND site = 'x'
               AND status = 'queued' AND paused = 0 AND attempts > 0 AND next_attempt_at > 5"""
        with store.engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.execute(sa.text(q)))
        assert "ix_replicas_due" in plan, plan


# ---------------------------------------------------------------------------- 3. dead workers


def test_work_leased_by_a_dead_worker_of_this_machine_is_taken_at_once(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish([studio.write(f"f{i}.bin", b"x" * i) for i in range(3)])
    owner = f"{SITE_ID}/{this_host()}/dead/abc"
    c.store.register_worker(owner, this_host(), boot_id(), dead_pid(), SITE_ID)
    lease_to(studio, owner)  # leased for an hour by a process that no longer exists
    result = studio.cli("sync", "--once", "--json")
    data = json.loads(result.stdout)
    assert result.returncode == 0 and data["transferred"] == 3, (result.stdout, result.stderr)
    assert statuses(studio, rep, "studio") == ["present"] * 3
    messages = [e.message or "" for e in c.store.events(kinds=["lease_expired"], limit=10)]
    assert len(messages) == 3 and all("is no longer running" in m for m in messages), messages
    assert owner not in {w.id for w in c.store.workers()}


def test_remove_is_not_refused_for_a_dead_workers_lease(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish([studio.write("r.bin", b"r")])
    owner = f"{SITE_ID}/{this_host()}/dead/def"
    c.store.register_worker(owner, this_host(), boot_id(), dead_pid(), SITE_ID)
    lease_to(studio, owner)
    # the copy to studio is "being transferred" by a process that no longer exists: `remove` used
    # to refuse for as long as its lease lasted; now the request is simply dropped
    result = c.remove(rep, "studio")
    assert result.dropped_requests == 1 and result.deleted == 0
    assert statuses(studio, rep, "studio") == []


def test_leases_of_silent_workers_elsewhere_expire_after_the_heartbeat_timeout(studio: Studio) -> None:
    store = studio.client.store
    rep = studio.publish([studio.write("s.bin", b"s")])
    store.register_worker("far/render-07/4242/x", "render-07", "other-boot", 4242, "far")
    lease_to(studio, "far/render-07/4242/x")
    store.register_worker("far/render-08/4243/y", "render-08", "other-boot", 4243, "far")
    assert reclaim_dead_leases(store, judge_silence=True) == 0, "a worker that beats must keep its work"
    with store.engine.begin() as conn:  # render-07 stopped beating a while ago
        conn.execute(
            s.workers.update()
            .where(s.workers.c.id == "far/render-07/4242/x")
            .values(heartbeat_at=s.workers.c.heartbeat_at - HEARTBEAT_TIMEOUT_SECONDS - 5)
        )
    assert reclaim_dead_leases(store, judge_silence=False) == 0, "silence is judged only when asked"
    assert reclaim_dead_leases(store, judge_silence=True) == 1
    assert statuses(studio, rep, "studio") == ["queued"]
    assert [w.id for w in store.workers()] == ["far/render-08/4243/y"]
    [event] = store.events(kinds=["lease_expired"], limit=10)
    assert event.message is not None and "sent no heartbeat for" in event.message


def test_a_running_worker_registers_beats_and_leaves(studio: Studio) -> None:
    worker = studio.client.worker()
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert wait_for(lambda: [w.id for w in studio.client.store.workers()] == [worker.worker_id], 10)
        [row] = studio.client.store.workers()
        assert row.host == this_host() and row.site_id == SITE_ID and row.silent_for < HEARTBEAT_TIMEOUT_SECONDS
    finally:
        worker.stop()
        thread.join(30)
        if worker.wake is not None:
            worker.wake.close()
    assert studio.client.store.workers() == []


# ---------------------------------------------------------------------------- 4. exit codes


def sync_once(studio: Studio) -> tuple[int, dict[str, Any], str]:
    result = studio.cli("sync", "--once", "--json")
    text = studio.cli("sync", "--once")
    assert result.returncode == text.returncode
    return result.returncode, json.loads(result.stdout), text.stdout


def test_sync_once_done_exits_0(studio: Studio) -> None:
    studio.publish([studio.write("ok.bin", b"ok")])
    code, data, text = sync_once(studio)
    assert code == 0 and data["result"] == "done" and data["remaining"]["due"] == 0, data
    assert "not done" not in text


def test_sync_once_with_an_unreachable_target_exits_5_and_says_so(studio: Studio) -> None:
    c = studio.client
    c.add_site("vendor", "local_drive", [f"work={studio.root / 'not-mounted'}"])
    c.settings_set("remote_site", "vendor", project="show")
    studio.publish([studio.write("u.bin", b"u")])
    code, data, text = sync_once(studio)
    assert code == 5 and data["result"] == "unreachable", data
    assert [u["site"] for u in data["unreachable_sites"]] == ["vendor"]
    assert "not mounted" in data["unreachable_sites"][0]["reason"]
    assert data["errors"] and "vendor" in data["errors"][0]
    assert data["remaining"]["due"] == 1
    assert "site vendor unreachable" in text and "exit code 5" in text


def test_sync_once_with_a_file_failed_for_good_exits_3(studio: Studio) -> None:
    studio.client.settings_set("retry_count", 1, project="show")
    flaky_remote(studio, permission_rate=1.0, operations=["write"])
    studio.publish([studio.write("p.bin", b"p")])
    code, data, text = sync_once(studio)
    assert code == 3 and data["result"] == "failed" and data["remaining"]["failed"] == 1, data
    assert "1 failed for good" in text


def test_sync_once_with_a_retry_still_to_come_exits_4(studio: Studio) -> None:
    studio.client.settings_set("retry_backoff", 3600, project="show")
    flaky_remote(studio, transient_rate=1.0, operations=["write"])
    studio.publish([studio.write("t.bin", b"t")])
    code, data, _text = sync_once(studio)
    assert code == 4 and data["result"] == "pending" and data["remaining"]["retry_later"] == 1, data
    assert data["failed_attempts"] == 1


def test_sync_once_with_work_leased_by_another_live_worker_exits_4(studio: Studio) -> None:
    studio.publish([studio.write("l.bin", b"l")])
    owner = "elsewhere/render-09/7/z"
    studio.client.store.register_worker(owner, "render-09", "b", 7, "elsewhere")
    lease_to(studio, owner)
    code, data, text = sync_once(studio)
    assert code == 4 and data["remaining"]["in_progress"] == 1 and data["transferred"] == 0, data
    assert "1 being transferred by another worker" in text


# ---------------------------------------------------------------------------- 7. LISTEN closes at once


def test_the_listen_thread_closes_without_waiting_for_a_poll(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Closing must not depend on a poll running out: with notifies() made to block until a
    notification arrives, the old relay (a 1 s poll) never noticed close() and was left running."""
    from sitesync.state.notify import NotificationRelay

    original = psycopg.Connection.notifies

    def blocking(self: psycopg.Connection, *, timeout: float | None = None, stop_after: int | None = None) -> Any:
        return original(self, timeout=None if timeout else timeout, stop_after=stop_after)

    monkeypatch.setattr(psycopg.Connection, "notifies", blocking)
    woken = threading.Event()
    relay = NotificationRelay(sa.make_url(pg_url), woken.set)
    relay.start()
    assert relay.listening.wait(10) and woken.wait(10)
    relay.close()
    assert not relay._thread.is_alive(), "close() returned with the LISTEN thread still running"
