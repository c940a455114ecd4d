"""The catalog corrected when reality disagrees (issue 12, paths 5 and 7, and ENOSPC): a source copy
found gone or changed is recorded at once and the file re-planned without spending the target's
attempts; with no other holder the target waits as "no source" and the representation shows as
lost (CLI, API filter, metrics); a file sitesync never wrote at the target is adopted when it is the
expected content and never replaced otherwise; a full disk is a condition of the site.
Real SQLite and PostgreSQL, real files, real worker."""

from __future__ import annotations

import os
from pathlib import Path

from tests.apikit import api_client
from tests.conftest import SITE_ID, Studio, keep_publishes_local
from tests.test_sync_flow import replica_states, transfer_events

REL = "show/seq01/sh010/publish/{product}/v001/data/{name}"


def _local(studio: Studio, product: str, name: str) -> Path:
    return studio.local_path(REL.format(product=product, name=name))


def _on_studio(studio: Studio, product: str, name: str) -> Path:
    return studio.studio_root / REL.format(product=product, name=name)


def _replicas(studio: Studio, rep: int, index: int = 0) -> dict[str, dict]:
    detail = studio.client.status(representation=rep)
    return {r["site"]: r for r in detail["files"][index]["replicas"]}


def _backup(studio: Studio) -> Path:
    root = studio.root / "backup"
    studio.client.add_site("backup", "local_drive", [f"work={root}"], {"create_roots": True})
    return root


def test_a_deleted_source_is_replanned_from_another_holder_without_spending_attempts(studio: Studio) -> None:
    c = studio.client
    backup = _backup(studio)
    rep = studio.publish([studio.write("a.bin", b"a" * 5000)], product="animMain", name="data")
    studio.sync()  # uploaded to studio: two holders now
    _local(studio, "animMain", "a.bin").unlink()  # an artist cleaned the disk by hand
    c.download(rep, "backup")
    report = studio.sync()
    # the transfer read the local copy first (the active site is preferred), found it gone, and
    # went to the other holder: the backup copy exists, nothing failed
    assert report.failed_attempts == 0
    assert (backup / REL.format(product="animMain", name="a.bin")).read_bytes() == b"a" * 5000
    replicas = _replicas(studio, rep)
    assert replicas["backup"]["status"] == "present" and replicas["backup"]["attempts"] == 0
    assert replicas["backup"]["source_site"] == "studio"
    # the lost local copy was recorded at once with its reason and fetched again from a good copy
    events = studio.client.store.events(representation_id=rep, kinds=["source_missing"])
    assert len(events) == 1 and events[0].site == SITE_ID
    assert f"the copy on {SITE_ID} is missing" in (events[0].message or "")
    assert replicas[SITE_ID]["status"] == "present"
    assert _local(studio, "animMain", "a.bin").read_bytes() == b"a" * 5000
    assert [e.site for e in transfer_events(studio, rep)].count("backup") == 1


def test_the_only_source_lost_shows_lost_and_the_target_waits_until_it_is_back(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish([studio.write("l.bin", b"l" * 700)], product="lightMain", name="data")
    src = _local(studio, "lightMain", "l.bin")
    src.unlink()
    report = studio.sync()
    assert report.transferred == 0 and report.failed_attempts == 0
    replicas = _replicas(studio, rep)
    assert replicas[SITE_ID]["status"] == "missing"
    assert replicas["studio"]["status"] == "no_source" and replicas["studio"]["attempts"] == 0
    # the error names the site where the read failed, not the target
    assert f"(on {SITE_ID}) is lost" in replicas["studio"]["last_error"]
    # shown as lost on that site everywhere: status, CLI, API filter, metrics
    status = c.status("show")
    row = next(x for x in status["representations"] if x["id"] == rep)
    assert row["sites"][SITE_ID]["status"] == "lost" and row["sites"]["studio"]["status"] == "no_source"
    cli = studio.cli("status", "show")
    assert cli.returncode == 0 and "lost" in cli.stdout and "no source" in cli.stdout
    with api_client(studio) as http:
        page = http.get("/api/v1/projects/show/representations", params={"active_status": "lost"}).json()
        assert [x["id"] for x in page["items"]] == [rep]
        page = http.get("/api/v1/projects/show/representations", params={"remote_status": "no_source"}).json()
        assert [x["id"] for x in page["items"]] == [rep]
        page = http.get("/api/v1/projects/show/representations", params={"status": "lost"}).json()
        assert [x["id"] for x in page["items"]] == [rep]
        metrics = http.get("/api/v1/metrics").text
    assert f'sitesync_files{{project="show",site="{SITE_ID}",status="missing"}} 1.0' in metrics
    assert 'sitesync_files{project="show",site="studio",status="no_source"} 1.0' in metrics
    # the file is restored and validated: a source again, the waiting target goes on by itself
    src.write_bytes(b"l" * 700)
    assert c.validate("local")["registered"] == 1
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["queued"]}
    assert studio.sync().transferred == 1
    assert _on_studio(studio, "lightMain", "l.bin").read_bytes() == b"l" * 700


def test_a_request_for_a_file_no_site_holds_waits_as_no_source(studio: Studio) -> None:
    keep_publishes_local(studio)
    rep = studio.publish([studio.write("n.bin", b"n")], product="noMain")
    _local(studio, "noMain", "n.bin").unlink()
    studio.client.validate("local")
    result = studio.client.upload(rep, "studio")
    assert result.get("now_no_source") == 1 and not result.get("now_queued")
    assert studio.sync().failed_attempts == 0


def test_an_unmounted_source_share_is_unknown_never_lost(studio: Studio, tmp_path: Path) -> None:
    c = studio.client
    frames = [studio.studio_file(f"show/sh090/f.{i}.exr", size=300) for i in range(3)]
    rep = studio.publish(frames, site="studio", product="plate", name="exr")
    c.download(rep)
    studio.studio_root.rename(tmp_path / "unplugged")
    studio.studio_root.mkdir()  # the mount point is there, the share is not
    report = studio.sync()
    assert report.transferred == 0 and report.failed_attempts == 0
    assert replica_states(studio, rep) == {"studio": ["present"] * 3, SITE_ID: ["queued"] * 3}
    unavailable = c.store.events(kinds=["site_unavailable"])
    assert unavailable and "is the storage mounted?" in (unavailable[0].message or "")
    studio.studio_root.rmdir()
    (tmp_path / "unplugged").rename(studio.studio_root)
    assert studio.sync().transferred == 3


def test_a_foreign_file_at_the_target_is_never_replaced_and_fails_at_once(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish([studio.write("u.bin", b"upload me")], product="upMain")
    # someone copied a file by hand to where the upload will go: different content
    target = _on_studio(studio, "upMain", "u.bin")
    target.parent.mkdir(parents=True)
    target.write_bytes(b"somebody else's work")
    report = studio.sync()
    assert report.transferred == 0 and report.failed_attempts == 1
    assert target.read_bytes() == b"somebody else's work"
    studio_replica = _replicas(studio, rep)["studio"]
    assert studio_replica["status"] == "failed" and studio_replica["attempts"] == 1  # no retries: it cannot help
    assert f"a different file is already at {target} on site studio" in studio_replica["last_error"]
    assert "move it away" in studio_replica["last_error"]
    failures = c.store.events(representation_id=rep, kinds=["failure"])
    assert failures and "a different file is already at" in (failures[0].message or "")


def test_the_expected_content_already_at_the_target_is_adopted_without_copying(studio: Studio) -> None:
    c = studio.client
    frames = [studio.studio_file(f"show/sh091/f.{i}.exr", size=400 + i) for i in range(2)]
    rep = studio.publish(frames, site="studio", product="plate", name="exr")
    # the artist already has the frames (copied by hand)
    for frame in frames:
        mine = studio.local_path(os.path.relpath(frame, studio.studio_root))
        mine.parent.mkdir(parents=True, exist_ok=True)
        mine.write_bytes(frame.read_bytes())
    c.download(rep)
    report = studio.sync()
    assert report.failed_attempts == 0
    assert replica_states(studio, rep)[SITE_ID] == ["present", "present"]
    assert transfer_events(studio, rep) == []
    assert len(c.store.events(representation_id=rep, kinds=["adopted"])) == 2


def test_a_full_target_disk_is_a_site_condition_and_keeps_the_attempts(studio: Studio) -> None:
    c = studio.client
    c.add_site(
        "vault",
        "faulty",
        [f"work={studio.root / 'vault'}"],
        {"inner_options": {"create_roots": True}, "enospc_rate": 1.0, "operations": ["write"]},
    )
    c.settings_set("retry_count", 1, project="show")
    rep = studio.publish([studio.studio_file("show/sh092/big.exr", size=64 * 1024)], site="studio", product="p")
    c.download(rep, "vault")
    worker = c.worker(once=True, listen=False)
    report = worker.run()
    assert report.failed_attempts == 0
    vault = _replicas(studio, rep)["vault"]
    assert vault["status"] == "queued" and vault["attempts"] == 0
    assert "no space left" in vault["last_error"]
    assert ("show", "vault") in worker.site_health() and "no space left" in worker.site_health()[("show", "vault")]


def test_a_hero_republish_replaces_the_old_copy_but_never_an_artists_edit(studio: Studio) -> None:
    """DESIGN §7a: before replacing, the file must be the version sitesync last saw there. The old
    hero copy on this machine is replaced by the new one; a copy the artist edited in place is not."""
    c = studio.client
    a = studio.studio_file("show/sh093/hero/a.abc", b"hero one, a")
    b = studio.studio_file("show/sh093/hero/b.abc", b"hero one, b")
    rep = studio.publish([a, b], site="studio", version="hero", product="cacheMain", name="abc")
    c.download(rep)
    studio.sync()
    edited = studio.local_path("show/sh093/hero/b.abc")
    edited.write_bytes(b"the artist's tweak, saved over the published file")
    a.write_bytes(b"hero two, a, longer")
    b.write_bytes(b"hero two, b, longer")
    c.publish("show", folder="seq01/sh010", product="cacheMain", version="hero", name="abc",
              files=[str(a), str(b)], site="studio")  # fmt: skip
    report = studio.sync()
    assert report.transferred == 1 and report.failed_attempts == 1
    assert studio.local_path("show/sh093/hero/a.abc").read_bytes() == b"hero two, a, longer"
    assert edited.read_bytes() == b"the artist's tweak, saved over the published file"
    replicas = _replicas(studio, rep, 1)
    assert replicas[SITE_ID]["status"] == "failed"
    assert f"a different file is already at {edited}" in replicas[SITE_ID]["last_error"]
