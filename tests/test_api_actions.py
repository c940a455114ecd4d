"""Actions, pauses, events, settings, health and live progress through the REST API (in-process
client, real SQLite, real worker). Refusals come back as one line that says what to do, and a
refused action changes nothing."""

from __future__ import annotations

import time
from typing import Any

from sitesync.engine.planner import WORKER_PAUSE
from tests.apikit import api_client, build_catalog
from tests.conftest import SITE_ID, Studio, db_snapshot


def statuses(http: Any, rep: int) -> dict[str, str]:
    detail = http.get(f"/api/v1/representations/{rep}").json()
    return {s["site"]: s["status"] for s in detail["sites"]}


def wait_for(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_detail_lists_every_file_on_every_site_with_errors(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with api_client(sqlite_studio) as http:
        detail = http.get(f"/api/v1/representations/{cat.reps['failed']}").json()
    assert detail["representation"]["folder"] == "seq02/sh110"
    assert (detail["active_site"], detail["remote_site"]) == (SITE_ID, "studio")
    sites = {s["site"]: s for s in detail["sites"]}
    assert sites[SITE_ID]["status"] == "failed" and sites[SITE_ID]["role"] == "active" and sites[SITE_ID]["wanted"]
    assert sites["studio"]["status"] == "present" and sites["studio"]["role"] == "remote"
    files = {f["path"].rsplit("/", 1)[1]: f for f in detail["files"]}
    bad = {r["site"]: r for r in files["plateMain.1001.exr"]["replicas"]}
    assert bad[SITE_ID]["status"] == "failed" and bad[SITE_ID]["attempts"] == 1
    assert "a different file is already at" in bad[SITE_ID]["last_error"]
    good = {r["site"]: r for r in files["plateMain.1002.exr"]["replicas"]}
    assert good[SITE_ID]["status"] == "present" and good[SITE_ID]["progress"] == 1.0
    assert files["plateMain.1002.exr"]["hash"].startswith("xxh3_128:") and files["plateMain.1002.exr"]["size"] == 609
    assert "failure" in [e["kind"] for e in detail["events"]][:3]


def test_download_upload_resync_priority_and_pause_through_the_api(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    cat = build_catalog(studio)
    with api_client(studio) as http:
        prio = http.post(f"/api/v1/representations/{cat.reps['queued']}/priority", json={"priority": 400}).json()
        assert prio["message"] == "priority 400 on 2 sites"  # wanted on studio (published) and here
        bad = http.post(f"/api/v1/representations/{cat.reps['queued']}/priority", json={"priority": 0})
        assert bad.status_code == 422 and "priority" in bad.json()["detail"]

        paused = http.post(f"/api/v1/representations/{cat.reps['queued']}/pause", json={"site": "local"}).json()
        assert paused["ok"] and statuses(http, cat.reps["queued"])[SITE_ID] == "paused"
        http.post(f"/api/v1/representations/{cat.reps['queued']}/resume", json={})
        assert statuses(http, cat.reps["queued"])[SITE_ID] == "queued"
        not_wanted = http.post(f"/api/v1/representations/{cat.reps['hero']}/pause", json={"site": "local"})
        assert not_wanted.status_code == 404 and "is not wanted" in not_wanted.json()["detail"]

        rep = cat.reps["studio_only_a"]
        response = http.post(f"/api/v1/representations/{rep}/download", json={"priority": 70})
        assert response.status_code == 200, response.text
        assert response.json()["message"] == f"download to {SITE_ID}: 2 files queued"
        studio.sync()
        assert statuses(http, rep)[SITE_ID] == "present"
        again = http.post(f"/api/v1/representations/{rep}/download", json={}).json()
        assert again["message"] == f"already on {SITE_ID} (2 files)"

        # the file in the way is moved aside, then a re-sync of the active site brings it
        failed = cat.reps["failed"]
        in_the_way = studio.local_path("show/seq02/sh110/plateMain/1/exr/plateMain.1001.exr")
        in_the_way.rename(in_the_way.with_suffix(".mine"))
        wrong_file = http.post(f"/api/v1/representations/{failed}/reset", json={"file_id": 1})
        assert wrong_file.status_code == 400 and "is not a file of representation" in wrong_file.json()["detail"]
        reset = http.post(f"/api/v1/representations/{failed}/reset", json={"scope": "active"}).json()
        assert reset["ok"] and reset["result"]["requeued"] >= 1 and reset["result"]["sites"] == [SITE_ID]
        assert statuses(http, failed)[SITE_ID] == "queued"

        upload = http.post(f"/api/v1/representations/{cat.reps['local_publish']}/upload", json={}).json()
        assert upload["message"] == "already on studio (1 files)"  # the sync above uploaded it
        assert http.get("/api/v1/representations/999999").status_code == 404


def test_remove_is_refused_by_min_copies_with_the_reason_and_changes_nothing(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    cat = build_catalog(studio)
    studio.client.settings_set("min_copies", 2, project="show")
    rep = cat.reps["both_a"]
    with api_client(studio) as http:
        before = db_snapshot(studio.db_url)
        single = http.post(f"/api/v1/representations/{rep}/remove", json={})
        assert single.status_code == 409
        body = single.json()
        assert body["error"] == "GuardRefusedError" and "min_copies=2" in body["detail"]
        assert "upload them to another site first" in body["detail"]
        batch = http.post(
            "/api/v1/actions", json={"action": "remove", "representation_ids": [rep, cat.reps["both_b"]]}
        ).json()
        assert (batch["ok"], batch["failed"]) == (0, 2)
        assert all(r["error"] == "GuardRefusedError" and "min_copies=2" in r["message"] for r in batch["results"])
        assert db_snapshot(studio.db_url)["replicas"] == before["replicas"]

        studio.client.settings_set("min_copies", 1, project="show")
        done = http.post("/api/v1/actions", json={"action": "remove", "representation_ids": [rep, 999999]}).json()
        assert done["ok"] == 1 and done["results"][0]["message"] == f"removed 1 copies from {SITE_ID}"
        assert done["results"][1]["error"] == "NotFoundError"
        assert statuses(http, rep).get(SITE_ID, "none") == "none"
        assert not (studio.local_root / "work/show/seq01/sh010/animMain/1/ma/animMain.1001.ma").exists()


def test_batch_actions_report_each_result(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    ids = [cat.reps["studio_only_a"], cat.reps["studio_only_b"], cat.reps["hero"]]
    with api_client(sqlite_studio) as http:
        down = http.post("/api/v1/actions", json={"action": "download", "representation_ids": ids}).json()
        assert down["ok"] == 3 and all(r["ok"] for r in down["results"])
        prio = http.post("/api/v1/actions", json={"action": "priority", "representation_ids": ids}).json()
        assert prio["failed"] == 3 and "give a priority" in prio["results"][0]["message"]
        prio = http.post("/api/v1/actions", json={"action": "priority", "priority": 5, "representation_ids": ids})
        assert prio.json()["ok"] == 3
        pause = http.post("/api/v1/actions", json={"action": "pause", "representation_ids": ids}).json()
        assert pause["ok"] == 3
        page = http.get("/api/v1/projects/show/representations", params={"active_status": "paused"}).json()
        assert {x["id"] for x in page["items"]} >= set(ids)
        reset = http.post("/api/v1/actions", json={"action": "reset", "scope": "all", "representation_ids": ids})
        assert reset.json()["ok"] == 3
        assert http.post("/api/v1/actions", json={"action": "explode", "representation_ids": ids}).status_code == 422
        assert http.post("/api/v1/actions", json={"action": "pause", "representation_ids": []}).status_code == 422


def test_pauses_at_worker_project_site_and_everything_level(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    cat = build_catalog(studio)
    rep = cat.reps["studio_only_b"]
    with api_client(studio) as http:
        result = http.post("/api/v1/pause", json={"worker": True}).json()
        assert result == {
            "scope": "worker",
            "paused": True,
            "site_id": SITE_ID,
            "changed": True,
            "project": None,
            "site": None,
        }
        assert (WORKER_PAUSE, SITE_ID) in studio.client.store.pauses()
        assert http.get("/api/v1/progress").json()["worker_state"]["paused"] is True
        assert [p["scope"] for p in http.get("/api/v1/pauses").json()] == ["worker"]
        http.post(f"/api/v1/representations/{rep}/download", json={})
        report = studio.sync()
        assert report.transferred == 0 and statuses(http, rep)[SITE_ID] == "queued"
        both = http.post("/api/v1/pause", json={"worker": True, "project": "show"})
        assert both.status_code == 400 and "give it alone" in both.json()["detail"]
        http.post("/api/v1/resume", json={"worker": True})
        assert studio.sync().transferred >= 1 and statuses(http, rep)[SITE_ID] == "present"

        http.post("/api/v1/pause", json={"project": "show"})
        [project] = http.get("/api/v1/projects").json()
        assert project["state"] == "paused" and project["paused"]
        http.post("/api/v1/resume", json={"project": "show"})
        site = http.post("/api/v1/pause", json={"site": "local"}).json()
        assert site["scope"] == "site" and site["site"] == SITE_ID
        assert http.get("/api/v1/sites/local").json()["paused"] is True
        page = http.get("/api/v1/projects/show/representations", params={"limit": 1}).json()
        assert page["paused"] == {"project": False, "active_site": True, "remote_site": False}
        http.post("/api/v1/resume", json={"site": "local"})
        everything = http.post("/api/v1/pause", json={}).json()
        assert everything["scope"] == "everything"
        assert http.get("/api/v1/health").json()["worker"]["paused"] is True
        http.post("/api/v1/resume", json={})
        assert http.get("/api/v1/pauses").json() == []
        unknown = http.post("/api/v1/pause", json={"project": "nope"})
        assert unknown.status_code == 404


def test_events_filter_page_and_poll(sqlite_studio: Studio) -> None:
    cat = build_catalog(sqlite_studio)
    with api_client(sqlite_studio) as http:
        newest = http.get("/api/v1/events", params={"project": "show", "limit": 5}).json()
        ids = [e["id"] for e in newest["events"]]
        assert ids == sorted(ids, reverse=True) and newest["last_id"] == ids[0]
        older = http.get("/api/v1/events", params={"project": "show", "limit": 5, "before_id": ids[-1]}).json()
        assert all(e["id"] < ids[-1] for e in older["events"]) and older["events"]
        failures = http.get("/api/v1/events", params={"kind": "failure"}).json()["events"]
        assert failures and all(e["kind"] == "failure" and e["project"] == "show" for e in failures)
        assert "a different file is already at" in failures[0]["message"]
        mine = http.get("/api/v1/events", params={"representation_id": cat.reps["failed"]}).json()["events"]
        assert {e["representation_id"] for e in mine} == {cat.reps["failed"]}
        assert {"publish", "request", "failure"} <= {e["kind"] for e in mine}
        text = http.get("/api/v1/events", params={"q": "SH110/PLATEMAIN"}).json()["events"]
        assert text and all("sh110/plateMain" in e["message"] for e in text)
        site = http.get("/api/v1/events", params={"site": "local", "kind": "transfer"}).json()["events"]
        assert site and all(e["site"] == SITE_ID and e["source_site"] == "studio" and e["bytes"] for e in site)
        http.post(f"/api/v1/representations/{cat.reps['hero']}/download", json={})
        polled = http.get("/api/v1/events", params={"after_id": newest["last_id"]}).json()
        assert [e["kind"] for e in polled["events"]] == ["request"] and polled["last_id"] > newest["last_id"]
        assert http.get("/api/v1/events", params={"project": "nope"}).status_code == 404


def test_settings_read_and_validated_write(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    with api_client(studio) as http:
        effective = http.get("/api/v1/settings", params={"project": "show", "effective": True}).json()
        assert effective["active_site"] == SITE_ID and effective["settings"]["retry_backoff"] == 0
        ok = http.put("/api/v1/settings", json={"key": "retry_count", "value": 7, "project": "show"})
        assert ok.status_code == 200 and ok.json()["settings"]["stored"]["retry_count"] == 7
        before = db_snapshot(studio.db_url)
        bad = http.put("/api/v1/settings", json={"key": "retry_count", "value": -1, "project": "show"})
        assert bad.status_code == 422 and "retry_count" in bad.json()["detail"]
        unknown_key = http.put("/api/v1/settings", json={"key": "colour", "value": "red"})
        assert unknown_key.status_code == 422 and "colour" in unknown_key.json()["detail"]
        assert db_snapshot(studio.db_url) == before
        text = http.put("/api/v1/settings", json={"key": "active_site", "value": "studio", "project": "show"})
        assert text.status_code == 200
        assert http.get("/api/v1/projects/show").json()["active_site"] == "studio"
        system = http.put("/api/v1/settings", json={"key": "system.enabled", "value": False}).json()
        assert system["scope"] == "system" and system["settings"]["enabled"] is False
        assert http.get("/api/v1/projects/show").json()["state"] == "disabled"
        local = http.put("/api/v1/settings", json={"key": "concurrency", "value": 2, "local": True}).json()
        assert local["settings"]["concurrency"] == 2
        assert (
            http.put("/api/v1/settings", json={"key": "retry_count", "value": 2, "project": "nope"}).status_code == 404
        )
        assert http.put("/api/v1/settings", json={"key": "a b", "value": 1}).status_code == 422


def test_health_and_an_in_process_worker_woken_by_each_action(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    cat = build_catalog(studio)
    studio.client.settings_set("loop_delay", 3600, project="show")  # only a wake-up can start work
    worker = studio.client.worker()
    with api_client(studio, worker=worker) as http:
        health = http.get("/api/v1/health").json()
        assert health["status"] == "ok" and health["site_id"] == SITE_ID and health["auth"] is False
        assert health["worker"]["running"] is True and health["worker"]["id"] == worker.worker_id
        assert health["database"].startswith("sqlite:///")
        rep = cat.reps["studio_only_b"]
        assert wait_for(lambda: not http.get("/api/v1/progress").json()["worker"]["transfers"], timeout=30)
        assert wait_for(worker.asleep.is_set, timeout=30), "the worker never went idle"
        wakeups = worker.wakeups
        marker = http.get("/api/v1/progress").json()["marker"]
        http.post("/api/v1/actions", json={"action": "download", "representation_ids": [rep]})
        assert wait_for(lambda: statuses(http, rep)[SITE_ID] == "present", timeout=30), statuses(http, rep)
        assert worker.wakeups > wakeups, "the action did not wake the sleeping worker"
        progress = http.get("/api/v1/progress").json()
        assert progress["marker"] != marker and progress["worker"]["files_done"] >= 1
    assert worker.stopping, "the app stops its worker when it shuts down"


def test_progress_shows_running_transfers_on_their_rows(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    cat = build_catalog(studio)
    worker = studio.client.worker(listen=False)
    # what the worker does when a transfer starts: its claim and the in-memory byte counter
    project_id = studio.client.store.project("show").id
    studio.client.download(cat.reps["studio_only_a"], priority=1000)
    [first, second] = studio.client.store.claim(project_id, SITE_ID, ["studio"], worker.worker_id, 2, 60)
    worker.progress.start(first.replica_id, first.path, SITE_ID, "studio", first.size)
    worker.progress.counter(first.replica_id)(first.size // 2)
    with api_client(studio) as http:
        http.app.state.ctx.worker = worker
        live = http.get("/api/v1/progress").json()["worker"]
        [transfer] = live["transfers"]
        assert transfer["representation_id"] == cat.reps["studio_only_a"] and transfer["progress"] == 0.5
        row = next(
            x
            for x in http.get("/api/v1/projects/show/representations", params={"limit": 500}).json()["items"]
            if x["id"] == cat.reps["studio_only_a"]
        )
        total = first.size + second.size
        assert row["active"]["status"] == "in_progress"
        assert row["active"]["progress"] == round((first.size // 2) / total, 4)
        detail = http.get(f"/api/v1/representations/{cat.reps['studio_only_a']}").json()
        progress = {f["id"]: r["progress"] for f in detail["files"] for r in f["replicas"] if r["site"] == SITE_ID}
        assert progress[first.file_id] == 0.5 and progress[second.file_id] == 0.0
