"""The replica state machine (DESIGN §4) on the real databases: claims, leases, outcomes, retries,
reset, priority order, and pauses that survive a restart."""

from __future__ import annotations

import time

from sitesync.errors import RetryPolicy, TransientStorageError, decide
from sitesync.state.records import Outcome
from sitesync.state.store import StateStore
from tests.conftest import SITE_ID, Studio


def _outcome(claim, kind: str, error: str | None = None, retry_count: int = 3, backoff: float = 0.0) -> Outcome:
    """A transfer outcome as the worker records it: an ``error`` is judged by ``errors.decide``."""
    verdict = None
    if kind == "error":
        verdict = decide(TransientStorageError(error or "?"), claim.attempts, RetryPolicy(retry_count, backoff), "x")
    return Outcome(
        replica_id=claim.replica_id,
        file_id=claim.file_id,
        representation_id=claim.representation_id,
        project_id=claim.project_id,
        site=claim.site,
        kind=verdict.kind if verdict else kind,
        source_site=SITE_ID,
        bytes=claim.size,
        error=error,
        attempts=verdict.attempts if verdict else claim.attempts,
        delay=verdict.delay if verdict else 0.0,
    )


def _status(store: StateStore, rep_id: int, site: str) -> list[tuple[str, int, str | None]]:
    rows = []
    for _f, replicas in store.representation_detail(rep_id):
        for r in replicas:
            if r.site == site:
                rows.append((r.status, r.attempts, r.last_error))
    return rows


def _claim(
    studio: Studio,
    limit: int = 10,
    owner: str = "w1",
    lease: float = 30.0,
    site: str = "studio",
    now: float | None = None,
):
    pid = studio.client.store.project("show").id
    return studio.client.store.claim(pid, site, [SITE_ID], owner, limit, lease, now)


def test_claim_then_present(studio: Studio) -> None:
    rep = studio.publish([studio.write("a.bin", b"a")])
    store = studio.client.store
    assert _status(store, rep, "studio") == [("queued", 0, None)]
    [claim] = _claim(studio)
    assert claim.sources == ("studio",) or SITE_ID in claim.sources
    assert _status(store, rep, "studio") == [("in_progress", 0, None)]
    assert _claim(studio, owner="w2") == []  # leased: nobody else gets it
    assert store.record_outcomes("w1", [_outcome(claim, "present")]) == 1
    assert _status(store, rep, "studio") == [("present", 0, None)]


def test_retry_backoff_then_exhaustion_then_reset(studio: Studio) -> None:
    rep = studio.publish([studio.write("b.bin", b"b")])
    store = studio.client.store
    [claim] = _claim(studio)
    store.record_outcomes("w1", [_outcome(claim, "error", "disk on fire", retry_count=2, backoff=100)])
    assert _status(store, rep, "studio") == [("queued", 1, "disk on fire")]
    assert _claim(studio) == [], "a file in backoff must not be claimed before its next attempt time"
    # pretend the backoff elapsed
    pid = store.project("show").id
    [claim] = store.claim(pid, "studio", [SITE_ID], "w1", 10, 30, now=time.time() + 101)
    store.record_outcomes("w1", [_outcome(claim, "error", "still on fire", retry_count=2)])
    assert _status(store, rep, "studio") == [("failed", 2, "still on fire")]
    assert store.claim(pid, "studio", [SITE_ID], "w1", 10, 30, now=time.time() + 10_000) == []
    events = [e.kind for e in store.events(representation_id=rep)]
    assert events.count("failure") == 2

    result = studio.client.reset(rep)
    assert result["requeued"] == 1
    assert _status(store, rep, "studio") == [("queued", 0, None)]
    assert len(_claim(studio)) == 1


def test_priority_orders_claims(studio: Studio) -> None:
    low = studio.publish([studio.write("low.bin", b"l")])
    high = studio.publish([studio.write("high.bin", b"h")])
    mid = studio.publish([studio.write("mid.bin", b"m")])
    studio.client.set_priority(high, 900)
    studio.client.set_priority(mid, 400)
    order = [c.representation_id for c in _claim(studio, limit=3)]
    assert order == [high, mid, low]


def test_priority_limits_claim_to_most_urgent(studio: Studio) -> None:
    reps = [studio.publish([studio.write(f"p{i}.bin", b"x")]) for i in range(5)]
    studio.client.set_priority(reps[3], 1000)
    [claim] = _claim(studio, limit=1)
    assert claim.representation_id == reps[3]


def test_lease_expiry_returns_work_without_counting_an_attempt(studio: Studio) -> None:
    rep = studio.publish([studio.write("c.bin", b"c")])
    store = studio.client.store
    [claim] = _claim(studio, lease=30)
    assert store.expire_leases() == 0  # the lease still runs
    later = time.time() + 31  # the clock as it will be once the lease ran out
    assert store.expire_leases(now=later) == 1  # its worker stopped renewing it
    assert _status(store, rep, "studio") == [("queued", 0, "transfer interrupted: its worker stopped (lease expired)")]
    assert next(e.kind for e in store.events(representation_id=rep)) == "lease_expired"
    # the crashed worker's late outcome is discarded: it no longer holds the lease
    [again] = _claim(studio, owner="w2", now=later)
    assert store.record_outcomes("w1", [_outcome(claim, "present")]) == 0
    assert _status(store, rep, "studio")[0][0] == "in_progress"
    assert store.record_outcomes("w2", [_outcome(again, "present")]) == 1


def test_renew_leases_reports_lost_ones(studio: Studio) -> None:
    rep = studio.publish([studio.write("d.bin", b"d")])
    store = studio.client.store
    [claim] = _claim(studio, lease=30)
    assert store.renew_leases("w1", {claim.replica_id: 1}, 30) == set()
    studio.client.reset(rep)  # a running transfer is left to finish: reset does not take it away
    assert store.renew_leases("w1", {claim.replica_id: 1}, 30) == set()
    later = time.time() + 31  # the clock as it will be once the lease ran out
    assert store.expire_leases(now=later) == 1  # w1 stopped renewing
    [taken] = _claim(studio, owner="w2", now=later)  # another worker took it over
    assert taken.replica_id == claim.replica_id
    assert store.renew_leases("w1", {claim.replica_id: 1}, 30) == {claim.replica_id}


def test_representation_pause_survives_restart_and_keeps_file_state(studio: Studio) -> None:
    rep = studio.publish([studio.write("e.bin", b"e")])
    store = studio.client.store
    [claim] = _claim(studio)
    store.record_outcomes("w1", [_outcome(claim, "error", "network blip", retry_count=5)])
    studio.client.pause(representation=rep, site="studio")
    assert _claim(studio) == []
    # a new process (new store, new client) still sees the pause
    reopened = StateStore(studio.db_url)
    try:
        pid = reopened.project("show").id
        assert reopened.claim(pid, "studio", [SITE_ID], "w3", 10, 30) == []
        assert _status(reopened, rep, "studio") == [("queued", 1, "network blip")], "pause must not touch file state"
    finally:
        reopened.close()
    studio.client.resume(representation=rep, site="studio")
    assert len(_claim(studio)) == 1


def test_project_site_and_global_pause_stop_the_worker(studio: Studio) -> None:
    rep = studio.publish([studio.write("f.bin", b"f")])
    for scope in ({"project": "show"}, {"site": "studio"}, {}):
        studio.client.pause(**scope)
        assert studio.sync().transferred == 0, f"paused {scope or 'everything'} but the worker transferred"
        studio.client.resume(**scope)
    assert studio.sync().transferred == 1
    assert _status(studio.client.store, rep, "studio") == [("present", 0, None)]


def test_disabled_project_is_skipped(studio: Studio) -> None:
    studio.publish([studio.write("g.bin", b"g")])
    studio.client.settings_set("enabled", False, project="show")
    assert studio.sync().transferred == 0
    studio.client.settings_set("enabled", True, project="show")
    assert studio.sync().transferred == 1


def test_republish_during_transfer_discards_stale_outcome(studio: Studio) -> None:
    src = studio.write("h.bin", b"old")
    rep = studio.publish([src], version="hero")
    store = studio.client.store
    [claim] = _claim(studio)
    src.write_bytes(b"new content")
    studio.client.publish(
        "show", folder="seq01/sh010", product="product1", version="hero", name="data", files=[str(src)]
    )
    assert store.record_outcomes("w1", [_outcome(claim, "present")]) == 0
    assert _status(store, rep, "studio") == [("queued", 0, None)]


def test_global_switch_off_uses_studio_only(studio: Studio) -> None:
    studio.client.settings_set("system.enabled", False)
    rep = studio.publish([studio.write("i.bin", b"i")])
    detail = studio.client.status(representation=rep)
    assert [r["site"] for r in detail["files"][0]["replicas"]] == ["studio"]
    assert (studio.studio_root / "show/seq01/sh010/publish/product1/v001/data/i.bin").read_bytes() == b"i"
