"""The catalog's physical identity (issue 12, paths 1, 2, 3, 8 and 9): one physical file is one
catalog record, a publish never writes over another representation's file, every site's storage
carries a marker that is read before anything destructive, an unmounted share is never taken for
lost files, and one storage reached two ways gets one transfer. Real SQLite and PostgreSQL, real
files, real worker, the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sitesync.errors import ConflictError, GuardRefusedError, InvalidInputError, SitesyncError
from sitesync.hashing import hash_file
from tests.conftest import SITE_ID, Studio, db_snapshot
from tests.test_sync_flow import replica_states, transfer_events

MARKER = ".sitesync_site"


def _frames(studio: Studio, folder: str, n: int = 3) -> list[Path]:
    return [studio.studio_file(f"show/{folder}/f.{1001 + i}.exr", size=700 + i) for i in range(n)]


# ---------------------------------------------------------------------- path 1: one file, one record


def test_the_same_file_published_in_place_under_a_second_key_is_refused(studio: Studio) -> None:
    """A hero version reusing v001's files in place. Before: two records of one file, and two
    ordinary removes left no copy anywhere while the catalog still said present."""
    c = studio.client
    frames = _frames(studio, "sh010/render/v001")
    v001 = studio.publish(frames, site="studio", product="renderMain", version=1, name="exr")
    c.download(v001)
    studio.sync()
    before = db_snapshot(studio.db_url)
    with pytest.raises(ConflictError, match=rf"already belongs to representation {v001} .*renderMain/v001/exr"):
        studio.publish(frames, site="studio", product="renderMain", version="hero", name="exr")
    assert db_snapshot(studio.db_url) == before
    # the CLI says the same in one line, exit 2
    proc = studio.cli(
        "publish", "show", "--folder", "seq01/sh010", "--product", "renderMain", "--version", "hero",
        "--name", "exr", "--site", "studio", *map(str, frames),
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"already belongs to representation {v001}" in proc.stderr and "--link" in proc.stderr
    # the file still has its two copies and one record: removing one copy is fine, not the last
    assert c.remove(v001).deleted == 3
    with pytest.raises(GuardRefusedError):
        c.remove(v001, "studio")
    assert all(f.exists() for f in frames)


def test_one_file_under_two_projects_roots_is_one_record(studio: Studio) -> None:
    """A second project whose root maps into the first one's folder: the same physical file under
    another catalog path is refused too."""
    c = studio.client
    frames = _frames(studio, "sh020/comp", 2)
    first = studio.publish(frames, site="studio", product="compMain", name="exr")
    c.create_project("show2", {"work": {"any": str(studio.studio_root / "show")}})
    c.settings_set("active_site", "studio", project="show2")
    with pytest.raises(ConflictError, match=rf"the same file as .* already belongs to representation {first}"):
        c.publish("show2", folder="x", product="compMain", version=1, name="exr", files=[str(f) for f in frames])


# ---------------------------------------------------------------------- path 2: never over another's file


def test_publishing_from_outside_never_overwrites_another_representations_file(studio: Studio) -> None:
    """The publish template without product and version: two representations land on one path.
    Before: the second publish copied over the first one's verified copy."""
    c = studio.client
    c.settings_set("publish_template", "{root[work]}/{project}/{folder}/{filename}", project="show")
    first = studio.publish([studio.write("a/plate.exr", b"first plate")], product="plateA")
    location = studio.local_path("show/seq01/sh010/plate.exr")
    assert location.read_bytes() == b"first plate"
    proc = studio.cli(
        "publish", "show", "--folder", "seq01/sh010", "--product", "plateB", "--version", "1", "--name", "exr",
        str(studio.write("b/plate.exr", b"another plate")),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert f"already belongs to representation {first}" in proc.stderr and "plateA" in proc.stderr
    assert location.read_bytes() == b"first plate"


def test_publishing_from_outside_never_overwrites_a_file_sitesync_did_not_put_there(studio: Studio) -> None:
    location = studio.local_path("show/seq01/sh010/publish/fxMain/v001/data/fx.vdb")
    location.parent.mkdir(parents=True)
    location.write_bytes(b"an artist's own file")
    with pytest.raises(InvalidInputError, match=f"a different file is already at {location}"):
        studio.publish([studio.write("fx.vdb", b"the published fx")], product="fxMain")
    assert location.read_bytes() == b"an artist's own file"
    # the same content already there is adopted, nothing copied over it
    location.write_bytes(b"the published fx")
    rep = studio.publish([studio.write("fx.vdb", b"the published fx")], product="fxMain")
    assert replica_states(studio, rep)[SITE_ID] == ["present"]


# ---------------------------------------------------------------------- path 3: two names, one storage


def test_a_machine_root_on_the_studio_share_never_counts_one_copy_twice(studio: Studio) -> None:
    """The machine's local root points at the studio share. Before: a download "copied" the file
    onto itself, the catalog counted two copies, and removing the studio copy deleted the only one."""
    c = studio.client
    frames = _frames(studio, "sh030/anim", 2)
    rep = studio.publish(frames, site="studio", product="animMain", name="ma")
    assert (studio.studio_root / MARKER).exists(), "the studio storage got its marker when first used"
    c.settings_set(f"roots.{SITE_ID}.work", str(studio.studio_root), local=True)
    c.download(rep)
    report = studio.sync()
    assert report.transferred == 0
    events = c.store.events(kinds=["site_unavailable"])
    assert any("carries the marker of site 'studio'" in (e.message or "") for e in events)
    assert replica_states(studio, rep)[SITE_ID] == ["queued", "queued"]
    with pytest.raises(GuardRefusedError):
        c.remove(rep, "studio")
    with pytest.raises(InvalidInputError, match="carries the marker of site 'studio'"):
        c.remove(rep)
    assert all(f.exists() for f in frames)


def test_a_root_inside_another_sites_storage_is_refused(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish(_frames(studio, "sh031/anim", 1), site="studio", product="animMain", name="ma")
    c.add_site("scratch", "local_drive", [f"work={studio.studio_root / 'scratch'}"], {"create_roots": True})
    c.download(rep, "scratch")
    assert studio.sync().transferred == 0
    proc = studio.cli("site", "mark", "scratch", "--project", "show", "--json")
    assert proc.returncode == 1
    [root] = json.loads(proc.stdout)["roots"]
    assert root["state"] == "nested" and "lies inside the storage of site 'studio'" in root["detail"]
    # --force never makes a root inside another site's storage its own
    assert studio.cli("site", "mark", "scratch", "--force").returncode == 1


def test_two_names_for_one_storage_are_fine_when_declared_alternatives(studio: Studio) -> None:
    c = studio.client
    c.add_site("studio_nfs", "local_drive", [f"work={studio.studio_root}"], {}, alternative_sites=["studio"])
    rep = studio.publish(_frames(studio, "sh032/anim", 1), site="studio", product="animMain", name="ma")
    proc = studio.cli("site", "mark", "studio_nfs", "--json", check=True)
    assert [r["state"] for r in json.loads(proc.stdout)["roots"]] == ["ok"]
    assert replica_states(studio, rep) == {"studio": ["present"], "studio_nfs": ["present"]}


def test_a_cloned_disk_carries_the_original_marker_until_it_is_marked(studio: Studio) -> None:
    c = studio.client
    rep = studio.publish(_frames(studio, "sh033/plate", 2), site="studio", product="plateMain", name="exr")
    drive = studio.root / "drive"
    shutil.copytree(studio.studio_root, drive)  # a courier disk: a copy of the studio share, marker included
    c.add_site("drive", "local_drive", [f"work={drive}"], {})
    with pytest.raises(InvalidInputError, match="carries the marker of site 'studio'"):
        c.validate("drive")
    marked = c.mark_site("drive", force=True)
    assert marked["ok"] and [r["state"] for r in marked["roots"]] == ["marked"]
    assert c.validate("drive")["registered"] == 2
    assert sorted(replica_states(studio, rep)["drive"]) == ["present", "present"]


# ---------------------------------------------------------------------- path 8: unmounted share


def test_validate_of_an_unmounted_share_refuses_instead_of_losing_everything(studio: Studio, tmp_path: Path) -> None:
    """Before: validate of a share whose mount point was empty marked every copy missing."""
    c = studio.client
    rep = studio.publish(_frames(studio, "sh040/render", 4), site="studio", product="renderMain", name="exr")
    c.download(rep)
    studio.sync()
    studio.studio_root.rename(tmp_path / "unmounted")
    studio.studio_root.mkdir()  # the empty mount point
    before = db_snapshot(studio.db_url)
    for action in ("validate", "fsck"):
        with pytest.raises(InvalidInputError, match="is the storage mounted"):
            getattr(c, action)("studio")
        proc = studio.cli(action, "studio")
        assert proc.returncode == 2 and "is the storage mounted?" in proc.stderr and "--force" in proc.stderr
    assert db_snapshot(studio.db_url) == before
    assert replica_states(studio, rep)["studio"] == ["present"] * 4
    # --force: the person says this (empty) storage is the studio's; the losses are recorded
    result = c.validate("studio", force=True)
    assert result["missing"] == 4 and result["requeued"] == 4  # the local copies are still there
    assert replica_states(studio, rep)["studio"] == ["queued"] * 4


def test_a_share_first_seen_unmounted_is_not_marked(studio: Studio, tmp_path: Path) -> None:
    """An installation from before markers: no record, no marker, and none of the copies the
    catalog records there is found (an empty mount point): it is not marked as the site's."""
    c = studio.client
    rep = studio.publish(_frames(studio, "sh041/render", 2), site="studio", product="renderMain", name="exr")
    (studio.studio_root / MARKER).unlink()
    with c.store.engine.begin() as conn:  # as if the database predated markers
        conn.exec_driver_sql("DELETE FROM storage_markers")
    studio.studio_root.rename(tmp_path / "unmounted")
    studio.studio_root.mkdir()
    with pytest.raises(InvalidInputError, match="none of 2 copies the catalog records there was found"):
        c.validate("studio")
    assert not (studio.studio_root / MARKER).exists()
    studio.studio_root.rmdir()
    (tmp_path / "unmounted").rename(studio.studio_root)
    assert c.validate("studio")["already_present"] == 2  # mounted again: recognised and marked
    assert (studio.studio_root / MARKER).exists()
    assert replica_states(studio, rep)["studio"] == ["present", "present"]


# ---------------------------------------------------------------------- path 9: one storage, one transfer


def test_two_members_of_one_storage_get_one_transfer(studio: Studio) -> None:
    """remote_site studio and always_accessible_on its alias. Before: the file was written twice
    into the same storage."""
    c = studio.client
    c.add_site("studio_sftp", "local_drive", [f"work={studio.studio_root}"], {}, alternative_sites=["studio"])
    c.settings_set("always_accessible_on", ["studio_sftp"], project="show")
    rep = studio.publish([studio.write("one.bin", b"one storage")], product="oneMain")
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["queued"]}
    assert studio.sync().transferred == 1
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["present"], "studio_sftp": ["present"]}
    assert [e.site for e in transfer_events(studio, rep)] == ["studio"]


def test_both_members_asked_for_still_get_one_transfer(studio: Studio) -> None:
    c = studio.client
    c.add_site("studio_sftp", "local_drive", [f"work={studio.studio_root}"], {}, alternative_sites=["studio"])
    frames = [studio.write(f"b{i}.bin", b"b%d" % i) for i in range(4)]
    rep = studio.publish(frames, product="bothMain")
    c.upload(rep, "studio_sftp")
    assert studio.sync().transferred == 4
    assert sorted(replica_states(studio, rep)["studio_sftp"]) == ["present"] * 4
    assert len(transfer_events(studio, rep)) == 4


# ---------------------------------------------------------------------- pause means pause


def test_a_paused_representation_holds_sites_requested_after_the_pause(studio: Studio) -> None:
    """Before: only the sites wanted at the moment of the pause were held; a later download ran."""
    c = studio.client
    c.add_site("backup", "local_drive", [f"work={studio.root / 'backup'}"], {"create_roots": True})
    rep = studio.publish(_frames(studio, "sh050/plate", 2), site="studio", product="plateMain", name="exr")
    c.pause(representation=rep)
    c.download(rep)
    c.download(rep, "backup")
    assert studio.sync().transferred == 0
    assert replica_states(studio, rep)[SITE_ID] == ["queued", "queued"]
    states = c.store.site_states_of(rep)
    assert states[SITE_ID]["status"] == "paused" and states["backup"]["paused"]
    c.resume(representation=rep)
    assert studio.sync().transferred == 4


def test_a_paused_representation_shows_under_the_paused_filter_whatever_its_state(studio: Studio) -> None:
    from tests.apikit import api_client

    c = studio.client
    present = studio.publish(_frames(studio, "sh051/plate", 1), site="studio", product="plateMain", name="exr")
    other = studio.publish(_frames(studio, "sh052/plate", 1), site="studio", product="plateOther", name="exr")
    c.pause(representation=present)  # present on studio, nothing queued: still paused
    with api_client(studio) as http:
        for query in ({"remote_status": "paused"}, {"status": "paused"}):
            page = http.get("/api/v1/projects/show/representations", params=query).json()
            assert [x["id"] for x in page["items"]] == [present], query
            assert page["items"][0]["remote"]["status"] == "present" and page["items"][0]["remote"]["paused"]
        page = http.get("/api/v1/projects/show/representations", params={"remote_status": "present"}).json()
        assert sorted(x["id"] for x in page["items"]) == sorted([present, other])


# ---------------------------------------------------------------------- database errors


def test_no_face_imports_sqlalchemy() -> None:
    import sitesync

    root = Path(sitesync.__file__).parent
    faces = [*root.glob("cli/*.py"), *root.glob("api/**/*.py"), *root.glob("facade/*.py")]
    offenders = [str(p.relative_to(root)) for p in faces if "sqlalchemy" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_database_errors_reach_every_face_as_sitesync_errors(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    rep = studio.publish([studio.write("x.bin", b"x")])
    with studio.client.store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE links")
    with pytest.raises(SitesyncError, match=r"state database .*: no such table: links"):
        studio.client.links(rep)
    proc = studio.cli("status", "--representation", str(rep))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no such table: links" in proc.stderr


def test_a_share_unmounted_while_a_worker_runs_is_never_written_under(tmp_path: Path, monkeypatch) -> None:
    """The mount point left behind by an unmounted share is an empty folder on the local disk: a
    worker that proved the storage earlier still looks for the marker before it writes there."""
    from sitesync.engine.transfer import Expected, copy_verified
    from sitesync.errors import StorageIdentityError
    from sitesync.identity import storage
    from sitesync.identity.markers import Marker, write_marker
    from sitesync.providers.local_drive import LocalDriveProvider

    monkeypatch.setattr(storage, "STILL_MARKED_SECONDS", 0.0)
    share, source_root = tmp_path / "share", tmp_path / "src"
    share.mkdir()
    source_root.mkdir()
    (source_root / "a.bin").write_bytes(b"abc")
    target = LocalDriveProvider.from_options("vault", {}, {"work": str(share)})
    source = LocalDriveProvider.from_options("studio", {}, {"work": str(source_root)})
    write_marker(target, str(share), Marker.new("vault", "tests"))
    expected = Expected(3, "xxh3_128", hash_file(str(source_root / "a.bin"))[1])
    copy_verified(source, str(source_root / "a.bin"), target, str(share / "x" / "a.bin"), expected)
    (share / MARKER).unlink()  # unmounted: what is left is the empty mount point
    with pytest.raises(StorageIdentityError, match="is the storage still mounted"):
        copy_verified(source, str(source_root / "a.bin"), target, str(share / "x" / "b.bin"), expected)
    assert not (share / "x" / "b.bin").exists()
