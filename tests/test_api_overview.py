"""The coordinator's routes on real SQLite and PostgreSQL: the overview strip's counts, the Sites
view's numbers (bytes per state, latest transfer and failure, back-off until when, free space,
the conformance test), bulk actions on every match of a filter with the count confirmation,
events that name their representation and site, and the next retry shown for a failed file."""

from __future__ import annotations

import time

import pytest

from sitesync.facade.overview import state_order
from sitesync.providers import memory
from tests.apikit import api_client, build_catalog
from tests.conftest import SITE_ID, Studio
from tests.test_faults_on_time import flaky_remote


def test_overview_counts_every_state_and_the_transfers(studio: Studio) -> None:
    cat = build_catalog(studio)
    with api_client(studio) as http:
        data = http.get("/api/v1/projects/show/overview").json()
    counts = {x["state"]: x["count"] for x in data["states"]}
    assert data["total"] == len(cat.reps) == sum(counts.values())
    assert counts["failed"] == 1 and counts["in_progress"] == 1 and counts["paused"] == 1
    # attention order: lost copies, failures and files without a source first, present and "nothing
    # anywhere" last
    assert [x["state"] for x in data["states"]][:5] == ["lost", "failed", "no_source", "removing", "in_progress"]
    assert [x["state"] for x in data["states"]][-2:] == ["present", "none"]
    moving = data["transfers"]
    # the leased representation: 3 files of 512, 609 and 706 bytes, none done yet
    assert moving["files"] == 3 and moving["bytes_total"] == 512 + 609 + 706 and moving["bytes_done"] == 0
    assert moving["eta_seconds"] is None  # no worker in this server: no rate to reckon with


def test_a_state_the_list_does_not_know_yet_still_shows() -> None:
    """A newer server reports a state this one does not know: it is listed, after the known ones."""
    order = state_order({"failed": 1, "lost": 2, "present": 5, "newer_state": 1})
    assert order[:2] == ["lost", "failed"] and order[-1] == "newer_state"


def test_sites_view_numbers(studio: Studio) -> None:
    cat = build_catalog(studio)
    studio.client.add_site("cloud", "memory", options={"namespace": "cloud", "token": "TOPSECRET"})
    with api_client(studio) as http:
        sites = {x["name"]: x for x in http.get("/api/v1/projects/show/sites").json()}
        here = sites[SITE_ID]
        assert here["roles"] == ["active"] and here["this_machine"] and sites["studio"]["roles"] == ["remote"]
        assert here["files"]["failed"] == 1 and here["files"]["in_progress"] == 3
        assert here["bytes"]["failed"] == 512 and here["bytes"]["in_progress"] == 512 + 609 + 706
        assert here["last_transfer"]["source_site"] == "studio" and here["last_transfer"]["bytes"] > 0
        assert "a different file is already at" in here["last_error"]["message"]
        assert here["last_error"]["representation_id"] == cat.reps["failed"]
        assert here["health"] == {"state": "unknown", "reason": "no worker runs in this server", "until": None}
        assert here["usage_known"] and not sites["cloud"]["usage_known"]
        assert "TOPSECRET" not in http.get("/api/v1/projects/show/sites").text

        usage = http.get("/api/v1/sites/studio/usage", params={"project": "show"}).json()
        assert usage["known"] and usage["available"] and 0 < usage["free"] <= usage["total"]
        cloud = http.get("/api/v1/sites/cloud/usage", params={"project": "show"}).json()
        assert not cloud["known"] and cloud["free"] is None and cloud["reason"] == "the provider cannot tell"

        test = http.post("/api/v1/sites/studio/test", json={"project": "show"}).json()
        assert test["ok"] and test["failed"] == 0 and len(test["checks"]) >= 10
        assert {"name", "ok", "seconds", "detail"} <= set(test["checks"][0])


def test_a_site_the_worker_cannot_reach_shows_until_when(studio: Studio) -> None:
    c = studio.client
    c.add_site("cloud", "memory", options={"namespace": "cloud"})
    c.settings_set("always_accessible_on", "cloud", project="show")
    memory.set_offline("cloud")
    studio.publish([studio.write("c.bin", b"c")])
    worker = c.worker(once=True, projects=["show"], listen=False)
    before = time.time()
    worker.run()
    backoff = worker.site_backoff()
    assert ("show", "cloud") in backoff
    sites = {x["name"]: x for x in c.sites_overview("show", reached=worker.sites_reached(), backoff=backoff)}
    health = sites["cloud"]["health"]
    assert health["state"] == "backed_off" and "offline" in health["reason"] and health["until"] > before
    assert health["until"] == backoff[("show", "cloud")][1]
    assert sites["studio"]["health"]["state"] == "reachable"
    # a site the worker had no reason to contact is not claimed reachable
    c.add_site("spare", "memory", options={"namespace": "spare"})
    sites = {x["name"]: x for x in c.sites_overview("show", reached=worker.sites_reached(), backoff=backoff)}
    assert sites["spare"]["health"] == {"state": "unknown", "reason": "not needed by the worker yet", "until": None}


def test_bulk_action_on_every_match_with_a_count_confirmation(studio: Studio) -> None:
    cat = build_catalog(studio)
    body = {"action": "priority", "priority": 77, "filter": {"active_status": "none"}}
    with api_client(studio) as http:
        matching = http.get("/api/v1/projects/show/representations", params={"active_status": "none"}).json()
        assert matching["total"] == 3
        # the user confirmed fewer than the filter now matches: nothing is done
        refused = http.post("/api/v1/projects/show/actions", json={**body, "expected": 2})
        assert refused.status_code == 409 and "matches 3 representations" in refused.json()["detail"]
        assert all(x["priority"] != 77 for x in matching["items"])
        done = http.post("/api/v1/projects/show/actions", json={**body, "expected": 3}).json()
        assert done["matched"] == 3 and done["ok"] == 3 and done["failed"] == 0
        after = http.get("/api/v1/projects/show/representations", params={"active_status": "none"}).json()
        assert {x["id"] for x in after["items"]} == {cat.reps[k] for k in ("studio_only_a", "studio_only_b", "hero")}
        assert {x["priority"] for x in after["items"]} == {77}
        # the quick filter too
        quick = {"action": "pause", "filter": {"q": "sh010 animMain"}, "expected": 1}
        assert http.post("/api/v1/projects/show/actions", json=quick).json()["matched"] == 1
        # every page: a filter matching more than a page is acted on whole
        resumed = http.post(
            "/api/v1/projects/show/actions", json={"action": "pause", "filter": {}, "expected": 1000}
        ).json()
        assert resumed["matched"] == len(cat.reps)


def test_bulk_on_more_than_one_page(studio: Studio) -> None:
    """Paging inside the facade: 3 pages of 2 when the page size is 2."""
    import sitesync.facade.overview as overview

    cat = build_catalog(studio)
    original = overview._BULK_PAGE
    overview._BULK_PAGE = 2
    try:
        total, ids = studio.client.sync_queue_ids("show")
    finally:
        overview._BULK_PAGE = original
    assert total == len(cat.reps) and sorted(ids) == sorted(cat.reps.values())


def test_events_name_their_representation_site_and_actor(studio: Studio) -> None:
    cat = build_catalog(studio)
    c = studio.client
    c.pause(project="show")
    c.pause(worker=True)
    with api_client(studio) as http:
        events = http.get("/api/v1/events", params={"limit": 500}).json()["events"]
    failure = next(e for e in events if e["kind"] == "failure")
    assert failure["representation"] == "seq02/sh110 / plateMain / v001 / exr"
    pauses = [e for e in events if e["kind"] == "pause"]
    # a representation paused on every site it is wanted on, a project, this machine's workers
    by_rep = next(e for e in pauses if e["representation_id"] == cat.reps["paused"])
    assert by_rep["site"] == SITE_ID and by_rep["actor"]
    project = next(e for e in pauses if e["message"] == "paused project show on every site")
    assert project["project"] == "show"
    machine = next(e for e in pauses if e["message"].startswith("paused the workers"))
    assert machine["site"] == SITE_ID
    assert all(e["site"] or e["project"] for e in pauses), pauses


def test_detail_shows_when_a_failed_file_is_tried_again(studio: Studio) -> None:
    """retry_backoff 2 s: the time shown is the one the queue uses (claimed then, not before)."""
    c = studio.client
    c.settings_set("retry_backoff", 2, project="show")
    c.settings_set("retry_count", 3, project="show")
    flaky_remote(studio, transient_rate=1.0, operations=["write"])  # every upload fails, retryably
    rep = studio.publish([studio.write("retry.bin", b"r" * 300)])
    studio.sync()
    with api_client(studio) as http:
        detail = http.get(f"/api/v1/representations/{rep}").json()
    [replica] = [r for r in detail["files"][0]["replicas"] if r["site"] == "flaky"]
    assert replica["status"] == "queued" and replica["attempts"] == 1
    shown = replica["next_attempt_at"]
    assert shown is not None and shown > replica["updated_at"]
    store, project_id = c.store, c.store.project("show").id
    assert store.claim(project_id, "flaky", [SITE_ID], "probe", 10, 60, now=shown - 0.01) == []
    assert [x.representation_id for x in store.claim(project_id, "flaky", [SITE_ID], "probe", 10, 60, now=shown)] == [
        rep
    ]


@pytest.mark.parametrize("project", [None, "show"])
def test_settings_form_generated_from_the_models(studio: Studio, project: str | None) -> None:
    c = studio.client
    c.add_site("cloud", "memory", options={"namespace": "cloud", "token": "TOPSECRET-form"})
    c.settings_set("min_copies", 2)  # the default project
    c.settings_set("active_site", "studio", local=True, project="show")
    with api_client(studio) as http:
        response = http.get("/api/v1/settings/form", params={"project": project} if project else {})
        assert response.status_code == 200, response.text
        assert "TOPSECRET-form" not in response.text
        form = response.json()
    groups = {g["id"]: g for g in form["groups"]}
    fields = {f["key"]: f for f in groups["project"]["fields"]}
    retry = fields["retry_count"]
    assert retry["kind"] == "integer" and retry["minimum"] == 1 and retry["maximum"] == 1000
    assert retry["description"].startswith("Attempts per file and site")
    assert fields["min_copies"]["source"] == "default project" and fields["min_copies"]["value"] == 2
    assert fields["enabled"]["kind"] == "boolean" and fields["enabled"]["source"] == "default"
    if project:
        assert fields["loop_delay"]["source"] == "project" and fields["loop_delay"]["value"] == 1
        active = fields["active_site"]
        assert active["source"] == "this machine" and active["value"] == "studio"
        assert [x["layer"] for x in active["layers"]] == ["default", "project", "this machine"]
        assert active["writes"]["this machine"] == {"key": "active_site", "local": True, "project": "show"}
        assert "cloud" in active["choices"]
    token = next(f for f in groups["site:cloud"]["fields"] if f["name"] == "token")
    assert token["kind"] == "secret" and token["is_set"] and token["value"] is None
    assert token["source"] == "system" and all(x["value"] is None for x in token["layers"])
    assert groups["machine"]["fields"][1]["name"] == "concurrency"
    assert groups["system"]["fields"][0]["key"] == "system.enabled"


def test_settings_form_writes_through_the_validated_route(studio: Studio) -> None:
    with api_client(studio) as http:
        form = http.get("/api/v1/settings/form", params={"project": "show"}).json()
        field = next(f for f in form["groups"][0]["fields"] if f["key"] == "loop_delay")
        body = {**field["writes"]["project"], "value": 0}
        refused = http.put("/api/v1/settings", json=body)
        assert refused.status_code == 422 and "loop_delay" in refused.json()["detail"]
        assert http.put("/api/v1/settings", json={**body, "value": 7.5}).status_code == 200
        again = http.get("/api/v1/settings/form", params={"project": "show"}).json()
        field = next(f for f in again["groups"][0]["fields"] if f["key"] == "loop_delay")
        assert field["value"] == 7.5 and field["source"] == "project"
        # back to the inherited value: null removes the project's own
        assert http.put("/api/v1/settings", json={**body, "value": None}).status_code == 200
        again = http.get("/api/v1/settings/form", params={"project": "show"}).json()
        field = next(f for f in again["groups"][0]["fields"] if f["key"] == "loop_delay")
        assert field["source"] == "default" and field["value"] == 60.0
