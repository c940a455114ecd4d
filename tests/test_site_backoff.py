"""The site back-off (engine/sitehealth.py) on an injected clock, and under a running worker whose
real SFTP server is killed mid-transfer and started again: one outage is one back-off step, the
delay logged is the delay applied, a successful check resets it."""

from __future__ import annotations

import logging
import os
import re
import threading
import time

import pytest

from sitesync.engine.sitehealth import Backoff, SiteHealth
from sitesync.errors import SiteUnavailableError
from sitesync.identity.markers import MARKER_NAME
from tests.conftest import Studio, define_site
from tests.servers import ssh_server
from tests.test_crash_and_workers import wait_for

KEY = ("show", "vendor")
BACKOFF = Backoff(first=10.0, longest=60.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def down() -> None:
    raise SiteUnavailableError("site vendor: cannot connect (test)")


def up() -> None:
    return None


def test_one_outage_is_one_step_however_many_transfers_fail() -> None:
    clock, events = Clock(), []
    health = SiteHealth(lambda kind, site, msg: events.append(kind), clock)
    assert health.usable(KEY, up, BACKOFF)
    started = clock.now
    clock.now += 1
    # eight transfers in flight all fail with the site's condition
    began = [health.failed(KEY, "connection refused", BACKOFF, started=started) for _ in range(8)]
    assert began == [True] + [False] * 7
    assert health.delay(KEY) == 10.0 and health.next_check() == clock.now + 10.0
    assert events == ["site_unavailable"]
    clock.now += 9.9
    assert not health.usable(KEY, up, BACKOFF)  # held: not even checked
    clock.now += 0.1
    assert health.usable(KEY, up, BACKOFF)  # the hold is over and the check passes: back at once
    assert health.delay(KEY) is None and events == ["site_unavailable", "site_available"]


def test_each_failed_recheck_doubles_up_to_the_longest_and_success_resets() -> None:
    clock = Clock()
    health = SiteHealth(clock=clock)
    assert not health.usable(KEY, down, BACKOFF)
    delays = [health.delay(KEY)]
    for _ in range(5):
        clock.now = health.next_check() or 0
        assert not health.usable(KEY, down, BACKOFF)
        delays.append(health.delay(KEY))
    assert delays == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    clock.now = health.next_check() or 0
    assert health.usable(KEY, up, BACKOFF)
    assert health.delay(KEY) is None
    assert health.usable(KEY, down, BACKOFF)  # known good since its check: not checked again
    health.succeeded(KEY)  # a transfer worked: the back-off starts over
    health.failed(KEY, "refused", BACKOFF, started=clock.now + 1)
    assert health.delay(KEY) == 10.0, "a new outage starts at the first step again"


def test_a_site_whose_check_passes_but_transfers_fail_at_once_keeps_its_back_off() -> None:
    clock = Clock()
    health = SiteHealth(clock=clock)
    assert not health.usable(KEY, down, BACKOFF)
    clock.now = health.next_check() or 0
    assert not health.usable(KEY, down, BACKOFF)
    assert health.delay(KEY) == 20.0
    clock.now = health.next_check() or 0
    assert health.usable(KEY, up, BACKOFF)  # the check passes...
    health.failed(KEY, "refused", BACKOFF, started=clock.now + 0.1)  # ...the transfers do not
    assert health.delay(KEY) == 40.0, "no transfer worked since: the outage goes on, not from the start"


def test_a_failure_from_before_the_site_came_back_does_not_hold_it_again() -> None:
    clock = Clock()
    health = SiteHealth(clock=clock)
    assert health.usable(KEY, up, BACKOFF)
    long_transfer_started = clock.now
    clock.now += 1
    health.failed(KEY, "refused", BACKOFF, started=clock.now)
    clock.now += 10
    assert health.usable(KEY, up, BACKOFF)  # recovered
    clock.now += 50
    # the transfer that started before the outage times out only now
    assert not health.failed(KEY, "timed out", BACKOFF, started=long_transfer_started)
    assert health.delay(KEY) is None


def test_a_condition_a_check_cannot_see_ends_with_a_successful_transfer() -> None:
    """Another site condition (a full disk answers checks fine) is tried again on probation; it
    takes a further step if the transfers fail again, and ends when one succeeds."""
    clock = Clock()
    health = SiteHealth(clock=clock)
    health.failed(KEY, "no space left", BACKOFF, condition="full", started=clock.now)
    clock.now = health.next_check() or 0
    assert health.usable(KEY, up, BACKOFF)  # on probation
    assert health.failed(KEY, "no space left", BACKOFF, condition="full", started=clock.now)
    assert health.delay(KEY) == 20.0
    clock.now = health.next_check() or 0
    assert health.usable(KEY, up, BACKOFF)
    health.succeeded(KEY)
    assert health.delay(KEY) is None


def test_delay_logged_is_the_delay_applied(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = SiteHealth(clock=clock)
    with caplog.at_level(logging.WARNING, logger="sitesync.worker"):
        assert not health.usable(KEY, down, BACKOFF)
        for _ in range(2):
            clock.now = health.next_check() or 0
            health.usable(KEY, down, BACKOFF)
    logged = [float(m) for m in re.findall(r"next check in (\d+)s", caplog.text)]
    assert logged == [10.0, 20.0, 40.0]
    assert health.next_check() == clock.now + 40.0


@pytest.mark.slow
def test_sshd_killed_mid_transfer_and_restarted_under_a_running_worker(
    sqlite_studio: Studio, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's case: sshd stopped with ~30 files queued and some in flight, started again once
    the worker noticed; everything becomes present after the restart (default first back-off:
    15 s), with one back-off step for the outage."""
    studio, c = sqlite_studio, sqlite_studio.client
    with ssh_server() as server:
        folder = server.base / "vendor"
        folder.mkdir()
        if os.geteuid() == 0:
            st = server.base.stat()
            os.chown(folder, st.st_uid, st.st_gid)
        define_site(c, "vendor", "sftp", ["work=/projects"], server.options(base_path=str(folder), connect_timeout=5))
        c.settings_set("remote_site", "vendor", project="show")
        c.settings_set("retry_count", 1000, project="show")
        files = [studio.write(f"plates/p.{i:04d}.raw", size=3 * 1024 * 1024) for i in range(30)]
        rep = studio.publish(files)
        worker = c.worker(concurrency=4)
        thread = threading.Thread(target=worker.run, name="test-worker")

        def present() -> int:
            return sum(
                1
                for f in c.status(representation=rep)["files"]
                for r in f["replicas"]
                if r["site"] == "vendor" and r["status"] == "present"
            )

        with caplog.at_level(logging.INFO, logger="sitesync.worker"):
            thread.start()
            try:
                assert wait_for(lambda: present() >= 2, 60)
                server.stop()
                at_stop = present()
                assert at_stop < 30, "everything was copied before the server went away"
                # the outage lasts until the worker noticed it and held the site back
                assert wait_for(lambda: KEY in worker.site_backoff(), 60), "the outage went unnoticed"
                server.start()
                restarted = time.monotonic()
                # the one back-off step (15 s) then the copies; the bound only keeps a hang from stalling the suite
                assert wait_for(lambda: present() == 30, 120), f"{present()}/30 present 120 s after the restart"
                recovered = time.monotonic() - restarted
            finally:
                worker.stop()
                thread.join(60)
        # every file the worker left on the server besides the site's marker: the copies, nothing else
        copies = sorted(p.name for p in (folder / "projects").rglob("*") if p.is_file() and p.name != MARKER_NAME)
        assert copies == sorted(f.name for f in files), "missing copies, or temporary files left behind"
    steps = [float(m) for m in re.findall(r"next check in (\d+)s", caplog.text)]
    assert steps == [15.0], f"one outage must be one back-off step: {steps}"
    kinds = [e.kind for e in c.store.events(kinds=["site_unavailable", "site_available"], limit=100)]
    assert sorted(kinds) == ["site_available", "site_unavailable"]
    print(f"recovered {recovered:.1f}s after the restart ({at_stop}/30 present when sshd was killed)")
