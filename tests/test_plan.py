"""The dry-run plan (``sync --dry-run``, ``GET /api/v1/plan``, ``Client.plan``): what the worker
would transfer now, from where, to where, in which order and with how many bytes; what it would
skip and why; and that producing it changes nothing in the catalog or on any storage."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sitesync import Client
from sitesync.state.records import Outcome
from tests.apikit import api_client
from tests.conftest import SITE_ID, Studio, db_snapshot


def storage_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under the test's storage roots with size and modification time."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            top = path.relative_to(root).parts[0]
            if top == "home" or top.startswith("state.db"):
                continue  # the installation's config and data, the SQLite catalog: not sites
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_size if path.is_file() else -1, st.st_mtime_ns)
    return out


def _rep(studio: Studio, product: str, nfiles: int = 1, size: int = 1000, **kw: Any) -> int:
    files = [studio.studio_file(f"show/plan/{product}/f{i}.bin", size=size + i) for i in range(nfiles)]
    return studio.publish(files, site=kw.pop("site", "studio"), product=product, **kw)


def build_scene(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """One representation in each situation the plan must explain."""
    c = studio.client
    c.add_site("cloud", "local_drive", [f"work={studio.root / 'cloud'}"])
    c.add_site("vendor", "local_drive", [f"work={studio.root / 'vendor'}"])
    c.add_site("backup", "local_drive", [f"work={studio.root / 'backup'}"])  # never mounted here
    (studio.root / "cloud").mkdir()
    (studio.root / "vendor").mkdir()
    reps: dict[str, int] = {}
    # failed at once: a file sitesync never wrote is in the way of the download
    c.settings_set("retry_count", 3, project="show")
    reps["failed"] = _rep(studio, "failed")
    c.download(reps["failed"])
    in_the_way = studio.local_path("show/plan/failed/f0.bin")
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_bytes(b"x" * 10)
    studio.sync()
    # lost: the only (studio) copy changed behind sitesync's back; the download waits for a source
    reps["lost"] = _rep(studio, "lost")
    c.download(reps["lost"])
    (studio.studio_root / "show/plan/lost/f0.bin").write_bytes(b"y" * 1000)
    studio.sync()
    # waiting for a retry: the worker recorded a failed attempt with an hour's back-off
    reps["retry"] = _rep(studio, "retry")
    c.download(reps["retry"])
    project_id = c.store.project("show").id
    [claim] = c.store.claim(project_id, SITE_ID, ["studio"], "ws-test/host/1/abc", 10, 60)
    retry = Outcome(
        claim.replica_id, claim.file_id, claim.representation_id, project_id, SITE_ID, "retry",
        source_site="studio", error="connection reset", attempts=1, delay=3600,
    )  # fmt: skip
    c.store.record_outcomes("ws-test/host/1/abc", [retry])
    # the queue the worker serves: two representations, the later one at a higher priority
    reps["normal"] = _rep(studio, "normal", nfiles=2)
    c.download(reps["normal"])
    reps["urgent"] = _rep(studio, "urgent", nfiles=2, size=3000)
    c.download(reps["urgent"], priority=200)
    reps["paused_rep"] = _rep(studio, "pausedrep")
    c.download(reps["paused_rep"])
    c.pause(representation=reps["paused_rep"], site=SITE_ID)
    reps["in_progress"] = _rep(studio, "inprogress")
    c.download(reps["in_progress"], priority=999)
    claimed = c.store.claim(c.store.project("show").id, SITE_ID, ["studio"], "ws-test/elsewhere/1/abc", 1, 3600)
    assert [x.representation_id for x in claimed] == [reps["in_progress"]]  # another worker holds it
    # another machine's own site
    monkeypatch.setenv("SITESYNC_SITE_ID", "ws-other")
    with Client(db=studio.db_url, home=studio.home) as other:
        reps["other_machine"] = _rep(studio, "othermachine")
        other.download(reps["other_machine"])
    monkeypatch.setenv("SITESYNC_SITE_ID", SITE_ID)
    # a paused site, a disabled site, a site this machine's worker found unreachable
    reps["cloud"] = _rep(studio, "tocloud")
    c.upload(reps["cloud"], "cloud")
    c.pause(site="cloud")
    reps["vendor"] = _rep(studio, "tovendor")
    c.upload(reps["vendor"], "vendor")
    reps["backup"] = _rep(studio, "tobackup")
    c.upload(reps["backup"], "backup")
    c.store.add_event("site_unavailable", f"{SITE_ID}/host/1/abc", site="backup", message="root folder missing")
    # only the vendor holds it, and the vendor is switched off for the project: no source
    vendor_file = studio.root / "vendor/show/plan/vendoronly/f0.bin"
    vendor_file.parent.mkdir(parents=True)
    vendor_file.write_bytes(os.urandom(700))
    reps["no_source"] = studio.publish([vendor_file], site="vendor", product="vendoronly")
    c.download(reps["no_source"])
    c.settings_set("sites.vendor.enabled", False, project="show")
    return reps


def _skips(plan: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(x["site"], x["reason"]): x for x in plan["skipped"]}


def test_plan_lists_transfers_in_order_and_explains_every_skip(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    reps = build_scene(studio, monkeypatch)
    c = studio.client
    before_db = db_snapshot(studio.db_url)
    before_files = storage_snapshot(studio.root)

    plan = c.plan()

    # the local queue: the urgent representation's two files first, then the normal one's
    order = [(x["representation_id"], x["source"], x["target"]) for x in plan["transfers"]]
    assert order == [
        (reps["urgent"], "studio", SITE_ID),
        (reps["urgent"], "studio", SITE_ID),
        (reps["normal"], "studio", SITE_ID),
        (reps["normal"], "studio", SITE_ID),
    ]
    assert [x["order"] for x in plan["transfers"]] == [1, 2, 3, 4]
    assert [x["size"] for x in plan["transfers"]] == [3000, 3001, 1000, 1001]
    assert plan["queues"] == [
        {"project": "show", "target": SITE_ID, "sources": ["studio", "cloud"], "files": 4, "bytes": 8002, "listed": 4}
    ]
    assert plan["totals"]["files"] == 4 and plan["totals"]["bytes"] == 8002
    skips = _skips(plan)
    assert skips[(SITE_ID, "paused")]["files"] == 1
    assert "paused on this site" in skips[(SITE_ID, "paused")]["detail"]
    assert skips[(SITE_ID, "failed")]["files"] == 1
    assert skips[(SITE_ID, "waiting_for_source")]["files"] == 1
    assert "found lost" in skips[(SITE_ID, "waiting_for_source")]["detail"]
    assert skips[("studio", "lost")]["files"] == 1
    assert skips[(SITE_ID, "retry_later")]["files"] == 1
    assert skips[(SITE_ID, "in_progress")]["files"] == 1
    assert skips[("ws-other", "other_machine")]["files"] == 1
    assert skips[("cloud", "paused")]["detail"] == "site cloud is paused"
    assert skips[("vendor", "disabled")]["files"] == 1
    assert "root folder missing" in skips[("backup", "backed_off")]["detail"]
    no_source = skips[("studio", "no_source")]
    assert no_source["files"] == 1 and no_source["bytes"] == 700
    assert "vendor" in no_source["detail"]

    # nothing changed: not a row in the catalog, not a file on any site
    assert db_snapshot(studio.db_url) == before_db
    assert storage_snapshot(studio.root) == before_files

    # a run limited to one target says why the others wait
    only_studio = c.plan(targets=["studio"], limit=1)
    assert only_studio["transfers"] == []
    # every queued file for this machine: the four, the paused one, the retry, the vendor-only one
    assert _skips(only_studio)[(SITE_ID, "not_selected")]["files"] == 7
    truncated = c.plan(limit=1)
    assert len(truncated["transfers"]) == 1 and truncated["truncated"]
    assert truncated["queues"][0]["files"] == 4


def test_plan_after_a_pause_of_the_worker(studio: Studio) -> None:
    c = studio.client
    rep = _rep(studio, "one")
    c.download(rep)
    c.pause(worker=True)
    plan = c.plan()
    assert plan["transfers"] == []
    assert _skips(plan)[(SITE_ID, "paused")]["detail"].startswith("this machine's workers are paused")


def test_cli_dry_run_and_api_plan_change_nothing(studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    reps = build_scene(studio, monkeypatch)
    before_db = db_snapshot(studio.db_url)
    before_files = storage_snapshot(studio.root)

    proc = studio.cli("sync", "--dry-run", "--json", check=True)
    plan = json.loads(proc.stdout)
    assert [x["representation_id"] for x in plan["transfers"]][:2] == [reps["urgent"]] * 2
    text = studio.cli("sync", "--dry-run", check=True).stdout
    assert "dry run" in text and "Nothing was changed" in text and "backed_off" in text
    with api_client(studio) as api:
        answer = api.get("/api/v1/plan", params={"project": "show", "limit": 2})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["transfers"]) == 2
        bad = api.get("/api/v1/plan", params={"site": "nowhere"})
        assert bad.status_code == 400 and "unknown site 'nowhere'" in bad.json()["detail"]
        assert api.get("/api/v1/plan", params={"limit": -1}).status_code == 422

    assert db_snapshot(studio.db_url) == before_db
    assert storage_snapshot(studio.root) == before_files

    # and the real run does what the plan said: the listed files arrive, nothing else does
    report = studio.sync()
    assert report.transferred == 4


def test_dry_run_bad_input_is_one_line(studio: Studio) -> None:
    proc = studio.cli("sync", "--dry-run", "--site", "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: unknown site 'nowhere'; see `sitesync site list`"
    proc = studio.cli("sync", "--dry-run", "--project", "nope")
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr
