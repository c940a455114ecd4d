"""``validate`` (register what a site holds, find what it lost) and ``fsck`` (re-hash copies) on
real databases and real files: final state of sites and catalog, never the sequence of calls."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sitesync.errors import GuardRefusedError, InvalidInputError
from tests.conftest import SITE_ID, Studio, db_snapshot, keep_publishes_local
from tests.test_sync_flow import replica_states, transfer_events


def _replica(studio: Studio, rep: int, site: str, index: int = 0) -> dict:
    detail = studio.client.status(representation=rep)
    return next(r for r in detail["files"][index]["replicas"] if r["site"] == site)


def test_validate_seeds_a_newly_attached_drive_without_copying(studio: Studio) -> None:
    c = studio.client
    drive = studio.root / "drive"
    c.add_site("drive", "local_drive", [f"work={drive}"], {}, alternative_sites=[])
    c.add_site("drive_nfs", "local_drive", [f"work={drive}"], {}, alternative_sites=["drive"])
    frames = [studio.studio_file(f"show/sh010/render/v001/f.{i}.exr", size=3000 + i) for i in range(5)]
    rep = studio.publish(frames, site="studio", product="renderMain", name="exr")
    other = studio.publish([studio.studio_file("show/sh020/anim.ma", b"anim")], site="studio", product="animMain")
    # the drive was filled elsewhere (a courier disk): same layout, one frame damaged, one extra file
    shutil.copytree(studio.studio_root, drive, ignore=shutil.ignore_patterns(".sitesync_site"))
    damaged = drive / "show/sh010/render/v001/f.3.exr"
    damaged.write_bytes(os.urandom(damaged.stat().st_size))
    (drive / "show/notes.txt").write_text("not published")
    c.download(other, "drive")  # one representation was already asked for there

    updates = []
    result = c.validate("drive", progress=updates.append)
    assert result["registered"] == 5 and result["differs"] == 1 and result["untracked"] == 1
    assert result["listed"] == 7 and result["missing"] == 0 and result["interrupted"] is None
    assert str(drive / "show/notes.txt") in result["examples"]["untracked"]
    assert {u.phase for u in updates} >= {"walk", "hash", "check"}
    states = replica_states(studio, rep)
    assert sorted(states["drive"]) == ["present"] * 4 and sorted(states["drive_nfs"]) == ["present"] * 4
    assert replica_states(studio, other)["drive"] == ["present"]
    assert studio.sync().transferred == 0
    assert transfer_events(studio, rep) == [] and transfer_events(studio, other) == []
    # asking for the rest: the damaged frame is a file sitesync never recorded there, so it is not
    # replaced (issue 12, path 5: before, it was overwritten without a word); moved away, it is copied
    c.download(rep, "drive")
    wrong = damaged.read_bytes()
    report = studio.sync()
    assert report.transferred == 0 and damaged.read_bytes() == wrong
    frame = _replica(studio, rep, "drive", 3)
    assert frame["status"] == "failed" and f"a different file is already at {damaged}" in frame["last_error"]
    damaged.rename(damaged.with_suffix(".mine"))
    c.download(rep, "drive")
    assert studio.sync().transferred == 1
    assert damaged.read_bytes() == frames[3].read_bytes()
    again = c.validate("drive")
    assert again["registered"] == 0 and again["already_present"] == 6 and again["untracked"] == 2  # + the moved file


def test_validate_finds_lost_copies_and_queues_them_again(studio: Studio) -> None:
    c = studio.client
    kept = studio.publish([studio.write("k.bin", b"k" * 100)], product="keptMain")
    lost = studio.publish([studio.write("l.bin", b"l" * 100), studio.write("l2.bin", b"m" * 10)], product="lostMain")
    studio.sync()
    local_lost = studio.local_path("show/seq01/sh010/publish/lostMain/v001/data/l.bin")
    local_lost.unlink()  # an artist cleaned the disk by hand
    studio.local_path("show/seq01/sh010/publish/lostMain/v001/data/l2.bin").write_bytes(b"short")
    result = c.validate("local")
    assert result["site"] == SITE_ID and result["missing"] == 2 and result["requeued"] == 2 and result["lost"] == 0
    assert replica_states(studio, lost)[SITE_ID] == ["queued", "queued"]
    assert replica_states(studio, kept)[SITE_ID] == ["present"]
    assert "missing (found by validate)" in _replica(studio, lost, SITE_ID)["last_error"]
    # the lost copies no longer count: removing the studio copy is refused now
    with pytest.raises(GuardRefusedError):
        c.remove(lost, "studio")
    assert studio.sync().transferred == 2
    assert local_lost.read_bytes() == b"l" * 100
    assert c.validate("local")["missing"] == 0


def test_validate_only_copy_lost_is_marked_lost_with_a_clear_error(studio: Studio) -> None:
    c = studio.client
    keep_publishes_local(studio)  # nothing is uploaded anywhere
    rep = studio.publish([studio.write("only.bin", b"only")], product="onlyMain")
    studio.local_path("show/seq01/sh010/publish/onlyMain/v001/data/only.bin").unlink()
    result = c.validate("local")
    assert result["lost"] == 1 and result["requeued"] == 0
    replica = _replica(studio, rep, SITE_ID)
    assert replica["status"] == "missing" and "no other site holds a verified copy" in replica["last_error"]
    assert studio.client.store.site_states_of(rep)[SITE_ID]["status"] == "lost"
    # restoring the file and validating again makes it a verified copy again
    studio.local_path("show/seq01/sh010/publish/onlyMain/v001/data/only.bin").write_bytes(b"only")
    assert c.validate("local")["registered"] == 1
    assert _replica(studio, rep, SITE_ID)["status"] == "present"


def test_unreachable_site_is_unknown_never_absent(studio: Studio, tmp_path: Path) -> None:
    rep = studio.publish([studio.write("u.bin", b"u")])
    studio.sync()
    studio.studio_root.rename(tmp_path / "unmounted")
    before = db_snapshot(studio.db_url)
    with pytest.raises(InvalidInputError, match=r"cannot validate site 'studio' for project 'show'.*not mounted"):
        studio.client.validate("studio", "show")
    result = studio.client.fsck("studio")
    assert result["projects"] == [] and "cannot be reached" in result["skipped"][0]["reason"]
    assert db_snapshot(studio.db_url) == before
    assert replica_states(studio, rep)["studio"] == ["present"]


def test_fsck_finds_corrupt_and_missing_copies_and_refetches_them(studio: Studio) -> None:
    c = studio.client
    reps = [studio.publish([studio.write(f"f{i}.bin", os.urandom(20_000))], product=f"p{i}") for i in range(4)]
    studio.sync()

    def on_studio(i: int) -> Path:
        return studio.studio_root / f"show/seq01/sh010/publish/p{i}/v001/data/f{i}.bin"

    originals = [on_studio(i).read_bytes() for i in range(4)]
    on_studio(0).write_bytes(os.urandom(20_000))  # bit rot: same size, other bytes
    on_studio(1).write_bytes(b"truncated")
    on_studio(2).unlink()
    updates = []
    result = c.fsck("studio", progress=updates.append)
    assert (result["checked"], result["ok"], result["corrupt"], result["missing"]) == (4, 1, 2, 1)
    assert result["requeued"] == 3 and result["lost"] == 0 and result["bytes"] == 80_000
    assert {p["representation_id"]: p["problem"] for p in result["problems"]} == {
        reps[0]: "corrupt",
        reps[1]: "corrupt",
        reps[2]: "missing",
    }
    assert updates and updates[-1].done == result["bytes_read"]
    assert "corrupt copy on studio" in _replica(studio, reps[0], "studio")["last_error"]
    # a corrupt copy is no longer a verified copy: the local one is now the last
    with pytest.raises(GuardRefusedError):
        c.remove(reps[0])
    assert studio.sync().transferred == 3
    assert [on_studio(i).read_bytes() for i in range(4)] == originals
    clean = c.fsck("studio")
    assert clean["ok"] == 4 and clean["problems"] == []


def test_fsck_corrupt_only_copy_is_lost_and_left_in_place(studio: Studio) -> None:
    c = studio.client
    keep_publishes_local(studio)
    rep = studio.publish([studio.write("solo.bin", b"solo" * 100)], product="soloMain")
    copy = studio.local_path("show/seq01/sh010/publish/soloMain/v001/data/solo.bin")
    copy.write_bytes(b"SOLO" * 100)
    result = c.fsck("local")
    assert result["corrupt"] == 1 and result["lost"] == 1
    replica = _replica(studio, rep, SITE_ID)
    assert replica["status"] == "missing" and "no other site holds a verified copy" in replica["last_error"]
    assert copy.read_bytes() == b"SOLO" * 100, "fsck never deletes what it cannot replace"


def test_validate_and_fsck_cli_json_and_errors(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    rep = studio.publish([studio.write("c.bin", b"cli")])
    studio.sync()
    proc = studio.cli("fsck", "studio", "--json", check=True)
    data = json.loads(proc.stdout)
    assert data["ok"] == 1 and data["site"] == "studio"
    studio.local_path("show/seq01/sh010/publish/product1/v001/data/c.bin").unlink()
    proc = studio.cli("validate", "local", "--project", "show")
    assert proc.returncode == 0, proc.stderr
    assert "1 copies missing or damaged: 1 queued again" in proc.stdout
    assert replica_states(studio, rep)[SITE_ID] == ["queued"]
    proc = studio.cli("validate", "mars")
    assert proc.returncode == 2 and proc.stderr.strip() == "error: unknown site 'mars'; see `sitesync site list`"


def test_present_copies_are_walked_in_bounded_id_windows(studio: Studio) -> None:
    reps = [studio.publish([studio.write(f"w{i}.bin", b"w")], product=f"w{i}") for i in range(5)]
    studio.sync()
    store = studio.client.store
    pid = store.project("show").id
    expected = sorted(r["id"] for rep in reps for r in [studio.client.status(representation=rep)["files"][0]])
    for window in (1, 2, 3, 1000):
        seen = [row.file_id for rows in store.present_windows(pid, "studio", window) for row in rows]
        assert sorted(seen) == expected, window


def test_validate_interrupted_by_a_listing_error_judges_nothing(studio: Studio) -> None:
    from sitesync.errors import TransientStorageError
    from sitesync.providers import registry
    from sitesync.providers.local_drive import LocalDriveProvider

    class FlakyListing(LocalDriveProvider):
        name = "flaky_listing"

        def list(self, prefix):
            for n, entry in enumerate(super().list(prefix)):
                if n == 1:
                    raise TransientStorageError(f"site {self.site}: listing timed out", site=self.site)
                yield entry

    registry.register("flaky_listing", FlakyListing)
    try:
        studio.client.add_site("nas", "flaky_listing", [f"work={studio.root / 'nas'}"], {"create_roots": True})
        reps = [studio.publish([studio.write(f"n{i}.bin", b"n")], site="nas", product=f"n{i}") for i in range(3)]
        before = db_snapshot(studio.db_url)
        result = studio.client.validate("nas")
        assert result["interrupted"] == "listing site nas failed: site nas: listing timed out; run validate again"
        assert result["missing"] == 0 and db_snapshot(studio.db_url) == before
        for rep in reps:
            assert replica_states(studio, rep)["nas"] == ["present"]
    finally:
        registry.unregister("flaky_listing")
