"""State-store behaviour behind the Sync Queue: a claim leases at most its limit, and many
writers changing the same representations at once (requests, priority, pause, re-sync, claims,
outcomes) leave the summaries exactly equal to their replicas; a transaction PostgreSQL aborts as
a deadlock victim is run again by the state store, whichever face called it."""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path

import psycopg
import pytest

from sitesync.state.records import Outcome
from tests.conftest import SITE_ID, Studio, assert_site_states_consistent, make_studio


def test_a_claim_leases_at_most_its_limit(studio: Studio) -> None:
    files = [studio.studio_file(f"show/seq/f.{i:03d}.exr", size=64) for i in range(30)]
    rep = studio.publish(files, site="studio", product="plateMain", name="exr")
    studio.client.download(rep)
    store = studio.client.store
    project_id = store.project("show").id
    first = store.claim(project_id, SITE_ID, ["studio"], "worker-a", 4, 60)
    second = store.claim(project_id, SITE_ID, ["studio"], "worker-b", 4, 60)
    assert len(first) == len(second) == 4
    assert not {c.replica_id for c in first} & {c.replica_id for c in second}


def test_concurrent_writers_keep_the_summaries_exact(studio: Studio) -> None:
    reps = [
        studio.publish(
            [studio.studio_file(f"show/c{r}/f.{i}.bin", size=100 + i) for i in range(6)],
            site="studio",
            product=f"p{r}",
            name="bin",
        )
        for r in range(4)
    ]
    store = studio.client.store
    project_id = store.project("show").id
    errors: list[str] = []
    stop = time.monotonic() + 3.0

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        owner = f"stress-{seed}"
        while time.monotonic() < stop:
            rep = rnd.choice(reps)
            try:
                action = rnd.randrange(6)
                if action == 0:
                    store.want(rep, SITE_ID, owner)
                elif action == 1:
                    store.set_priority(rep, rnd.randint(1, 1000), owner, rnd.choice([None, SITE_ID]))
                elif action == 2:
                    store.set_representation_paused(rep, rnd.random() < 0.5, owner, SITE_ID)
                elif action == 3:
                    store.reset(rep, [SITE_ID], owner)
                else:
                    claims = store.claim(project_id, SITE_ID, ["studio"], owner, 3, 60)
                    store.renew_leases(owner, {c.replica_id: 10 for c in claims}, 60)
                    outcomes = [
                        Outcome(
                            c.replica_id,
                            c.file_id,
                            c.representation_id,
                            c.project_id,
                            c.site,
                            rnd.choice(["present", "retry", "failed", "release"]),
                            source_site="studio",
                            bytes=c.size,
                            error="stress",
                            attempts=c.attempts + 1,
                        )
                        for c in claims
                    ]
                    store.record_outcomes(owner, outcomes)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return

    # user actions sweep a representation's replicas while a worker writes the same rows one by one:
    # PostgreSQL may pick a deadlock victim among them; the store runs the victim again, so no
    # writer ever sees an error
    threads = [threading.Thread(target=writer, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert_site_states_consistent(studio.client)


def test_cli_pauses_and_resumes_this_machines_workers(sqlite_studio: Studio) -> None:
    paused = sqlite_studio.cli("pause", "--worker", check=True)
    assert paused.stdout.strip() == f"paused the workers of this machine ({SITE_ID})"
    assert [p["scope"] for p in sqlite_studio.client.pause_list()] == ["worker"]
    rep = sqlite_studio.publish([sqlite_studio.write("w.bin", b"waits")])
    assert sqlite_studio.sync().transferred == 0
    mixed = sqlite_studio.cli("pause", "--worker", "--project", "show")
    assert mixed.returncode == 2 and "give it alone" in mixed.stderr
    sqlite_studio.cli("resume", "--worker", check=True)
    assert sqlite_studio.client.pause_list() == []
    assert sqlite_studio.sync().transferred == 1
    assert sqlite_studio.client.store.site_states_of(rep)["studio"]["status"] == "present"


def test_a_deadlock_victim_is_run_again_by_the_store_for_every_face(
    tmp_path: Path, pg_url: str, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real PostgreSQL deadlock: another session holds one of a representation's replica rows
    and then asks for one the pause already locked. The pause (any face: CLI, Python API, REST) is
    the victim; the store runs it again and it succeeds. Before: only the REST actions retried."""
    studio = make_studio(tmp_path, pg_url, home)  # deadlock detection is PostgreSQL's
    caplog.set_level(logging.INFO, logger="sitesync.state")
    rep = studio.publish([studio.studio_file(f"show/dl/f.{i}.bin", size=10) for i in range(2)], site="studio")
    studio.client.download(rep)
    store = studio.client.store
    ids = sorted(r.id for rs in store.replicas_for_files([f.id for f in store.files_of(rep)]).values() for r in rs)
    conninfo = store.engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg", "postgresql")
    other = psycopg.connect(conninfo)
    other.execute("SET deadlock_timeout = '30s'")  # the pause is the one that detects it, after 1 s
    other.execute("UPDATE replicas SET updated_at = updated_at WHERE id = %s", (ids[-1],))  # holds the last row
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(studio.client.pause(representation=rep)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the pause waits for the row this session holds
            # in this database only: other tests (xdist workers, other checkouts) share the server
            waiting = other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                " AND datname = current_database()"
            ).fetchone()
            if waiting and waiting[0]:
                break
            time.sleep(0.02)
        # now ask for a row the pause has locked: a deadlock; PostgreSQL aborts the pause
        other.execute("UPDATE replicas SET updated_at = updated_at WHERE id = %s", (ids[0],))
        other.commit()
    finally:
        other.close()
    thread.join(60)
    assert result and result[0]["paused"] is True, result  # type: ignore[index]
    assert any("trying again" in r.getMessage() for r in caplog.records), "the pause was not a deadlock victim"
    assert all(r.paused for rs in store.replicas_for_files([f.id for f in store.files_of(rep)]).values() for r in rs)
    assert_site_states_consistent(studio.client)
    studio.client.close()
