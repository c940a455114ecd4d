"""State-store behaviour behind the Sync Queue: a claim leases at most its limit, and many
writers changing the same representations at once (requests, priority, pause, re-sync, claims,
outcomes) leave the summaries exactly equal to their replicas, without deadlocks."""

from __future__ import annotations

import random
import re
import threading
import time

from sqlalchemy.exc import DBAPIError

from sitesync.state.records import Outcome
from tests.conftest import SITE_ID, Studio, assert_site_states_consistent


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
    deadlocks: list[str] = []
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
                            rnd.choice(["present", "error", "release"]),
                            source_site="studio",
                            bytes=c.size,
                            error="stress",
                        )
                        for c in claims
                    ]
                    store.record_outcomes(owner, outcomes)
            except DBAPIError as exc:
                # Known and outside the summaries: user actions update a representation's replicas
                # in one sweep while a worker writes the same rows one by one, so PostgreSQL can
                # pick a deadlock victim among them; the worker and the API run the victim again.
                # A deadlock in any other statement (the summaries' locks) is a failure.
                statement = str(exc.statement or "")
                if getattr(exc.orig, "sqlstate", None) == "40P01" and re.match(
                    r"(UPDATE|SELECT .*FROM) replicas\b", statement, re.S
                ):
                    deadlocks.append(statement.split("\n")[0][:80])
                    continue
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return

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
