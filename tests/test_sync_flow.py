"""End-to-end flows through ``sitesync.Client`` on real SQLite and PostgreSQL with local-drive sites:
publish, upload, download, hero re-publish, guarded remove, verification failures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sitesync.errors import GuardRefusedError, InvalidInputError, NotFoundError
from sitesync.facade.records import FilesWhereabouts, RepresentationWhereabouts
from sitesync.hashing import hash_file
from tests.conftest import SITE_ID, Studio


def replica_states(studio: Studio, rep_id: int) -> dict[str, list[str]]:
    detail = studio.client.status(representation=rep_id)
    out: dict[str, list[str]] = {}
    for f in detail["files"]:
        for r in f["replicas"]:
            out.setdefault(r["site"], []).append(r["status"])
    return out


def transfer_events(studio: Studio, rep_id: int) -> list:
    return [e for e in studio.client.store.events(representation_id=rep_id, limit=10_000) if e.kind == "transfer"]


def test_publish_from_workarea_copies_into_local_site_and_queues_studio(studio: Studio) -> None:
    src = studio.write("sh010_anim_v001.ma", b"maya ascii scene")
    rep = studio.publish([src], product="animMain", name="ma")
    states = replica_states(studio, rep)
    assert states == {SITE_ID: ["present"], "studio": ["queued"]}
    expected_local = studio.local_root / "work/show/seq01/sh010/publish/animMain/v001/ma/sh010_anim_v001.ma"
    assert expected_local.read_bytes() == b"maya ascii scene"

    report = studio.sync()
    assert report.transferred == 1
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["present"]}
    studio_copy = studio.studio_root / "show/seq01/sh010/publish/animMain/v001/ma/sh010_anim_v001.ma"
    assert studio_copy.read_bytes() == b"maya ascii scene"
    [event] = transfer_events(studio, rep)
    assert event.site == "studio" and event.source_site == SITE_ID and event.bytes == len(b"maya ascii scene")
    assert event.duration is not None and event.duration >= 0


def test_sequence_published_in_place_on_studio_then_downloaded(studio: Studio) -> None:
    frames = [studio.studio_file(f"show/sh010/render/v002/f.{1001 + i}.exr", size=2048) for i in range(120)]
    rep = studio.publish(frames, site="studio", product="renderMain", name="exr")
    # registered in place, not copied; nothing queued (remote is studio itself)
    assert replica_states(studio, rep) == {"studio": ["present"] * 120}
    detail = studio.client.status(representation=rep)
    assert detail["files"][0]["path"] == "{root[work]}/show/sh010/render/v002/f.1001.exr"

    result = studio.client.download(rep)
    assert result["queued"] == 120 and result["site"] == SITE_ID
    report = studio.sync()
    assert report.transferred == 120
    assert replica_states(studio, rep)[SITE_ID] == ["present"] * 120
    for i in (0, 57, 119):
        local = studio.local_path(f"show/sh010/render/v002/f.{1001 + i}.exr")
        assert local.read_bytes() == frames[i].read_bytes()
    # a second download is a no-op
    again = studio.client.download(rep)
    assert again["queued"] == 0 and again["now_present"] == 120


def test_hero_republish_requeues_sites_holding_old_content(studio: Studio) -> None:
    a = studio.write("hero/a.abc", b"version one of a")
    b = studio.write("hero/b.abc", b"b never changes")
    rep = studio.publish([a, b], version="hero", product="cacheMain", name="abc")
    studio.sync()
    assert replica_states(studio, rep)["studio"] == ["present", "present"]

    a.write_bytes(b"version TWO of a, longer")
    rep2 = studio.client.publish(
        "show", folder="seq01/sh010", product="cacheMain", version="hero", name="abc", files=[str(a), str(b)]
    )
    assert rep2.representation_id == rep and not rep2.created
    assert rep2.requeued_sites == ("studio",) and rep2.changed_files == 1
    detail = studio.client.status(representation=rep)
    by_path = {f["path"].rsplit("/", 1)[1]: {r["site"]: r["status"] for r in f["replicas"]} for f in detail["files"]}
    assert by_path["a.abc"] == {SITE_ID: "present", "studio": "queued"}
    assert by_path["b.abc"] == {SITE_ID: "present", "studio": "present"}
    studio.sync()
    studio_a = studio.studio_root / "show/seq01/sh010/publish/cacheMain/hero/abc/a.abc"
    assert studio_a.read_bytes() == b"version TWO of a, longer"
    # identical republish changes nothing
    same = studio.client.publish(
        "show", folder="seq01/sh010", product="cacheMain", version="hero", name="abc", files=[str(a), str(b)]
    )
    assert same.changed_files == 0 and same.requeued_sites == ()


def test_remove_refused_for_last_copy_then_download_after_remove(studio: Studio) -> None:
    src = studio.write("tex/wood.tx", os.urandom(50_000))
    rep = studio.publish([src], product="texMain", name="tx")
    local_copy = studio.local_root / "work/show/seq01/sh010/publish/texMain/v001/tx/wood.tx"
    # only the local site holds it: removal refused, nothing deleted
    with pytest.raises(GuardRefusedError, match="min_copies=1"):
        studio.client.remove(rep)
    assert local_copy.exists()
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["queued"]}

    studio.sync()
    removed = studio.client.remove(rep)
    assert removed.deleted == 1 and removed.site == SITE_ID
    assert not local_copy.exists()
    assert replica_states(studio, rep) == {"studio": ["present"]}
    # now studio holds the last copy: its removal is refused
    with pytest.raises(GuardRefusedError):
        studio.client.remove(rep, "studio")

    studio.client.download(rep)
    studio.sync()
    assert local_copy.read_bytes() == src.read_bytes()
    assert replica_states(studio, rep) == {SITE_ID: ["present"], "studio": ["present"]}


def test_min_copies_two_keeps_two_copies(studio: Studio) -> None:
    studio.client.settings_set("min_copies", 2, project="show")
    studio.client.add_site("backup", "local_drive", [f"work={studio.root / 'backup'}"], {"create_roots": True})
    studio.client.settings_set("always_accessible_on", "backup", project="show")
    rep = studio.publish([studio.write("x.bin", b"x" * 100)])
    studio.sync()
    assert sorted(replica_states(studio, rep)) == sorted([SITE_ID, "studio", "backup"])
    studio.client.remove(rep)  # studio + backup remain: ok
    with pytest.raises(GuardRefusedError, match="min_copies=2"):
        studio.client.remove(rep, "backup")


def test_source_changed_after_publish_is_marked_lost_and_the_target_waits_without_spending_attempts(
    studio: Studio,
) -> None:
    """Issue 12, path 7: a source copy changed behind sitesync's back is recorded as lost at once
    (with the reason), nothing is written, and the target waits as "no source" with its attempts
    untouched (before: the target burnt its attempts and ended failed, naming itself)."""
    src = studio.write("seq/plate.exr", os.urandom(10_000))
    rep = studio.publish([src], product="plateMain", name="exr")
    local = studio.local_root / "work/show/seq01/sh010/publish/plateMain/v001/exr/plate.exr"
    local.write_bytes(os.urandom(10_000))  # damaged behind sitesync's back, same size
    studio.client.settings_set("retry_count", 2, project="show")
    report = studio.sync()
    assert report.transferred == 0 and report.failed_attempts == 0
    target = studio.studio_root / "show/seq01/sh010/publish/plateMain/v001/exr/plate.exr"
    assert not target.exists()
    assert not list(target.parent.glob("*")) if target.parent.exists() else True
    detail = studio.client.status(representation=rep)
    replicas = {r["site"]: r for r in detail["files"][0]["replicas"]}
    assert replicas["studio"]["status"] == "no_source" and replicas["studio"]["attempts"] == 0
    assert f"only verified copy (on {SITE_ID}) is lost" in replicas["studio"]["last_error"]
    assert replicas[SITE_ID]["status"] == "missing"
    assert f"the copy on {SITE_ID} is not the catalog's content" in replicas[SITE_ID]["last_error"]
    states = studio.client.store.site_states_of(rep)
    assert states[SITE_ID]["status"] == "lost" and states["studio"]["status"] == "no_source"
    events = [e.kind for e in studio.client.store.events(representation_id=rep)]
    assert "source_missing" in events and "failure" not in events


def test_source_grown_after_publish_is_refused(studio: Studio) -> None:
    src = studio.write("grow.bin", b"12345")
    rep = studio.publish([src])
    local = studio.local_root / "work/show/seq01/sh010/publish/product1/v001/data/grow.bin"
    local.write_bytes(b"12345 and more")
    studio.client.settings_set("retry_count", 1, project="show")
    studio.sync()
    assert replica_states(studio, rep) == {"studio": ["no_source"], SITE_ID: ["missing"]}
    assert not (studio.studio_root / "show/seq01/sh010/publish/product1/v001/data/grow.bin").exists()


def test_publish_bad_input_changes_nothing(studio: Studio) -> None:
    good = studio.write("ok.bin")
    with pytest.raises(InvalidInputError, match="file not found"):
        studio.publish([good, studio.workarea / "missing.bin"])
    with pytest.raises(InvalidInputError, match="version"):
        studio.publish([good], version="v1x")
    with pytest.raises(InvalidInputError, match="folder"):
        studio.publish([good], folder="../escape")
    with pytest.raises(NotFoundError, match="unknown project"):
        studio.client.publish("nope", folder="a", product="b", version=1, name="c", files=[str(good)])
    assert studio.client.store.representation_page(1)[0] == 0


def test_alternative_site_marked_present_without_copying(studio: Studio) -> None:
    studio.client.add_site(
        "studio_sftp", "local_drive", [f"work={studio.root / 'never-written'}"], {}, alternative_sites=["studio"]
    )
    rep = studio.publish([studio.write("alt.bin", b"alt")])
    studio.sync()
    states = replica_states(studio, rep)
    assert states["studio"] == ["present"] and states["studio_sftp"] == ["present"]
    assert not (studio.root / "never-written").exists()


def test_unmounted_studio_storage_is_unavailable_not_failed(studio: Studio, tmp_path: Path) -> None:
    rep = studio.publish([studio.write("m.bin", b"m")])
    hidden = tmp_path / "studio-unmounted"
    studio.studio_root.rename(hidden)
    report = studio.sync()
    assert report.transferred == 0 and report.failed_attempts == 0
    detail = studio.client.status(representation=rep)
    studio_replica = next(r for r in detail["files"][0]["replicas"] if r["site"] == "studio")
    assert studio_replica["status"] == "queued" and studio_replica["attempts"] == 0
    assert not studio.studio_root.exists(), "a missing mount point must not be recreated"
    hidden.rename(studio.studio_root)
    report = studio.sync()
    assert report.transferred == 1


def test_whereis_by_id_catalog_path_and_disk_path(studio: Studio) -> None:
    src = studio.write("w.bin", b"where")
    rep = studio.publish([src], product="whereMain")
    studio.sync()
    by_id = studio.client.whereis(str(rep))
    assert isinstance(by_id, RepresentationWhereabouts)
    assert {s.site: s.status for s in by_id.sites} == {SITE_ID: "present", "studio": "present"}
    template = "{root[work]}/show/seq01/sh010/publish/whereMain/v001/data/w.bin"
    by_template = studio.client.whereis(template)
    assert isinstance(by_template, FilesWhereabouts)
    copies = {c.site: c.location for c in by_template.files[0].copies}
    assert copies["studio"] == str(studio.studio_root / "show/seq01/sh010/publish/whereMain/v001/data/w.bin")
    location = copies[SITE_ID]
    assert location is not None
    by_disk = studio.client.whereis(location)
    assert isinstance(by_disk, FilesWhereabouts) and by_disk.files[0].representation_id == rep
    with pytest.raises(NotFoundError):
        studio.client.whereis(str(studio.root / "nothing-here.bin"))


def test_hashes_recorded_are_xxh3_of_content(studio: Studio) -> None:
    src = studio.write("h.bin", os.urandom(4096))
    rep = studio.publish([src])
    detail = studio.client.status(representation=rep)
    size, digest = hash_file(str(src))
    assert detail["files"][0]["hash"] == f"xxh3_128:{digest}" and detail["files"][0]["size"] == size


def test_a_broken_site_never_stops_other_projects(studio: Studio) -> None:
    """A provider that raises an unexpected exception fails its own files, and only those."""
    from sitesync.providers import registry
    from sitesync.providers.local_drive import LocalDriveProvider

    class Exploding(LocalDriveProvider):
        name = "exploding"

        def write(self, path, stream, size, commit_check):
            raise RuntimeError("bug in a third-party provider")

        def write_small(self, path, data):  # the site's marker goes in; file transfers explode
            LocalDriveProvider.write(self, path, __import__("io").BytesIO(data), len(data), lambda: None)

    registry.register("exploding", Exploding)
    try:
        c = studio.client
        c.add_site("flaky", "exploding", [f"work={studio.root / 'flaky'}"], {"create_roots": True})
        c.create_project("other", {"work": {"any": str(studio.studio_root)}})
        for key, value in {
            "active_site": "local",
            "remote_site": "flaky",
            "retry_backoff": 0,
            "retry_count": 2,
        }.items():
            c.settings_set(key, value, project="other")
        bad = c.publish("other", folder="a", product="p", version=1, name="n", files=[str(studio.write("b.bin", b"b"))])
        good = studio.publish([studio.write("g.bin", b"g")])
        report = c.sync_once()
        assert report.transferred == 1 and report.failed_attempts == 2
        assert replica_states(studio, good)["studio"] == ["present"]
        detail = c.status(representation=bad.representation_id)
        flaky = next(r for r in detail["files"][0]["replicas"] if r["site"] == "flaky")
        assert flaky["status"] == "failed" and "RuntimeError: bug in a third-party provider" in flaky["last_error"]
    finally:
        registry.unregister("exploding")
