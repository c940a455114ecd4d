"""Links between representations (publish --link, download --with-links, shown in status),
``wait`` with its exit codes, and ``clear`` guarded by min_copies."""

from __future__ import annotations

import json
import threading

import pytest

from sitesync.errors import InvalidInputError
from tests.conftest import SITE_ID, Studio, db_snapshot
from tests.test_cli_errors import assert_refused
from tests.test_sync_flow import replica_states


def _on_studio_only(studio: Studio, name: str, data: bytes, **kw: object) -> int:
    return studio.publish([studio.studio_file(f"show/lib/{name}", data)], site="studio", product=name, **kw)


def test_links_closure_download_with_cycles(studio: Studio) -> None:
    c = studio.client
    tex = _on_studio_only(studio, "wood_tx", b"texture")
    cache = _on_studio_only(studio, "char_abc", b"cache")
    rig = _on_studio_only(studio, "rig_ma", b"rig", links=[tex])
    scene = _on_studio_only(studio, "scene_ma", b"scene", links=[rig, cache])
    # a cycle: the texture (re-published identically) references the scene that loads it
    c.publish(
        "show",
        folder="seq01/sh010",
        product="wood_tx",
        version=1,
        name="data",
        files=[str(studio.studio_root / "show/lib/wood_tx")],
        site="studio",
        links=[scene],
    )
    assert c.store.link_closure(scene) == [scene, cache, rig, tex]
    detail = c.status(representation=scene)
    assert [x["id"] for x in detail["links"]] == [cache, rig] and [x["id"] for x in detail["linked_by"]] == [tex]

    result = c.download(scene, with_links=True)
    assert result["site"] == SITE_ID and [r["representation_id"] for r in result["links"]] == [cache, rig, tex]
    assert studio.sync().transferred == 4
    for rep in (scene, cache, rig, tex):
        assert replica_states(studio, rep)[SITE_ID] == ["present"]
    # a re-publish without --link keeps the links; an empty list clears them
    c.publish(
        "show",
        folder="seq01/sh010",
        product="rig_ma",
        version=1,
        name="data",
        files=[str(studio.studio_root / "show/lib/rig_ma")],
        site="studio",
    )
    assert c.links(rig)["links"][0]["id"] == tex
    c.publish(
        "show",
        folder="seq01/sh010",
        product="rig_ma",
        version=1,
        name="data",
        files=[str(studio.studio_root / "show/lib/rig_ma")],
        site="studio",
        links=[],
    )
    assert c.links(rig)["links"] == []


def test_download_with_links_refuses_all_or_nothing(studio: Studio) -> None:
    c = studio.client
    c.create_project("library", {"work": {"any": str(studio.studio_root)}})
    c.settings_set("active_site", "local", project="library")
    lib = c.publish(
        "library",
        folder="props",
        product="chair",
        version=1,
        name="abc",
        files=[str(studio.studio_file("library/chair.abc", b"chair"))],
        site="studio",
    ).representation_id
    scene = _on_studio_only(studio, "set_ma", b"set", links=[lib])
    c.settings_set("enabled", False, project="library")
    before = db_snapshot(studio.db_url)
    with pytest.raises(InvalidInputError, match=r"site sync is off for project 'library'.*nothing was requested"):
        c.download(scene, with_links=True)
    assert db_snapshot(studio.db_url) == before
    c.settings_set("enabled", True, project="library")
    c.download(scene, with_links=True)
    assert studio.client.sync_once().transferred == 2
    assert replica_states(studio, lib)[SITE_ID] == ["present"]


def test_links_cli_and_bad_links(cli_studio: Studio) -> None:
    studio = cli_studio
    src = studio.write("wf.ma", b"workfile")
    proc = studio.cli(
        "publish",
        "show",
        str(src),
        "--folder",
        "sh010",
        "--product",
        "workfile",
        "--version",
        "1",
        "--name",
        "ma",
        "--link",
        "1",
        "--json",
        check=True,
    )
    wf = json.loads(proc.stdout)["representation_id"]
    out = studio.cli("status", "-r", str(wf), check=True).stdout
    assert "links to: 1 (seq01/sh010/product1/v001/data)" in out
    assert [x["id"] for x in studio.client.links(1)["linked_by"]] == [wf]
    args = ["publish", "show", str(src), "--folder", "sh010", "--product", "wf2", "--version", "1", "--name", "ma"]
    assert_refused(studio, [*args, "--link", "99"], "unknown representation 99 in --link", "nothing was published")
    before = db_snapshot(studio.db_url)
    kw = {"folder": "sh010", "version": 1, "name": "ma", "files": [str(src)]}
    with pytest.raises(InvalidInputError, match="invalid representation id 0"):
        studio.client.publish("show", product="wf2", links=[0], **kw)
    with pytest.raises(InvalidInputError, match=f"representation {wf} cannot link to itself"):
        studio.client.publish("show", product="workfile", links=[wf], **kw)
    assert db_snapshot(studio.db_url) == before


@pytest.fixture
def cli_studio(sqlite_studio: Studio) -> Studio:
    sqlite_studio.publish([sqlite_studio.write("one.bin", b"1")])
    return sqlite_studio


def test_wait_exit_codes(cli_studio: Studio) -> None:
    studio = cli_studio
    c = studio.client
    # present already: exit 0 at once, nothing requested
    proc = studio.cli("wait", "1", "--site", "local", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["status"] == "present"
    # no worker runs: timeout, exit 4; the request stays queued at the wait's raised priority
    proc = studio.cli("wait", "1", "--site", "studio", "--timeout", "0.3", "--interval", "0.1")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "timeout" in proc.stdout and "waiting for 1 representation(s) on studio: 0/1 files" in proc.stderr
    assert c.status(representation=1)["sites"]["studio"]["priority"] == 900
    c.set_priority(1, 1000, "studio")
    # a worker delivers while we wait: exit 0, and the wait never lowers a higher priority
    worker = c.worker(listen=True)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        proc = studio.cli("wait", "1", "--site", "studio", "--timeout", "60", "--interval", "0.1")
    finally:
        worker.stop()
        thread.join(30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert c.status(representation=1)["sites"]["studio"]["priority"] == 1000
    # the only copy is gone: nothing can ever deliver it, exit 3 at once
    lost = studio.publish([studio.write("gone.bin", b"gone")])
    studio.local_path("show/seq01/sh010/publish/product2/v001/data/gone.bin").unlink()
    c.validate("local")
    proc = studio.cli("wait", str(lost), "--site", "studio", "--timeout", "60")
    assert proc.returncode == 3 and "no verified copy on any site" in proc.stdout
    assert_refused(studio, ["wait", "1", "--site", "mars"], "unknown site 'mars'")


def test_wait_reports_failed_transfers(studio: Studio) -> None:
    c = studio.client
    c.settings_set("retry_count", 1, project="show")
    rep = studio.publish([studio.write("bad.bin", b"good bytes")], product="badMain")
    in_the_way = studio.studio_root / "show/seq01/sh010/publish/badMain/v001/data/bad.bin"
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_bytes(b"someone else's file")
    studio.sync()  # a file sitesync never wrote is in the way: failed at once
    assert replica_states(studio, rep)["studio"] == ["failed"]
    # wait asks again (a fresh set of attempts), a worker retries, and it fails again: status failed
    worker = c.worker(listen=True)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        snaps = []
        result = c.wait(rep, "studio", timeout=60, poll_interval=0.05, progress=snaps.append)
    finally:
        worker.stop()
        thread.join(30)
    assert result["status"] == "failed" and result["exit_code"] == 3
    assert "a different file is already at" in result["errors"][0]
    assert snaps and snaps[-1]["files"] == 1
    with pytest.raises(InvalidInputError, match="timeout"):
        c.wait(rep, "studio", timeout=-1)


def test_wait_with_links_needs_the_whole_closure(studio: Studio) -> None:
    c = studio.client
    tex = _on_studio_only(studio, "t_tx", b"t")
    scene = _on_studio_only(studio, "s_ma", b"s", links=[tex])
    c.download(scene)
    studio.sync()
    assert c.wait(scene, timeout=0)["status"] == "present"
    result = c.wait(scene, timeout=0, with_links=True)
    assert result["status"] == "timeout" and [r["status"] for r in result["representations"]] == ["present", "waiting"]
    assert replica_states(studio, tex)[SITE_ID] == ["queued"]  # the wait asked for it
    studio.sync()
    assert c.wait(scene, timeout=0, with_links=True)["status"] == "present"


def test_clear_removes_what_min_copies_allows_and_says_why_it_kept_the_rest(studio: Studio) -> None:
    c = studio.client
    synced = [studio.publish([studio.write(f"s{i}.bin", b"s" * 10)], product=f"synced{i}") for i in range(3)]
    studio.sync()
    only_here = studio.publish([studio.write("only.bin", b"o")], product="onlyHere")  # not uploaded yet
    pending = _on_studio_only(studio, "wanted_tx", b"w")
    c.download(pending)  # requested, never transferred
    result = c.clear("show")
    assert result["site"] == SITE_ID and result["files_removed"] == 3 and result["dropped_requests"] == 1
    assert sorted(r["representation_id"] for r in result["removed"]) == sorted(synced)
    [kept] = result["kept"]
    assert kept["representation_id"] == only_here and "min_copies=1" in kept["reason"]
    for rep in synced:
        assert SITE_ID not in replica_states(studio, rep)
    assert replica_states(studio, only_here)[SITE_ID] == ["present"]
    assert SITE_ID not in replica_states(studio, pending)
    assert not studio.local_path("show/seq01/sh010/publish/synced0/v001/data/s0.bin").exists()


def test_clear_cli(cli_studio: Studio) -> None:
    studio = cli_studio
    studio.sync()
    before = db_snapshot(studio.db_url)
    assert_refused(studio, ["clear", "nope"], "unknown project 'nope'")
    assert db_snapshot(studio.db_url) == before
    proc = studio.cli("clear", "show", "--site", "local", "--json", check=True)
    data = json.loads(proc.stdout)
    assert data["files_removed"] == 1 and data["kept"] == []
    proc = studio.cli("clear", "show", "--site", "studio", check=True)
    assert "kept 1 representations" in proc.stdout and "min_copies=1" in proc.stdout


def test_dirmap_maps_studio_roots_to_local_roots(studio: Studio) -> None:
    c = studio.client
    assert c.dirmap("show") == {str(studio.studio_root): str(studio.local_root / "work")}
    assert c.dirmap("show", source="local", target="studio") == {
        str(studio.local_root / "work"): str(studio.studio_root)
    }
    template = "{root[work]}/show/seq01/sh010/a.exr"
    studio_path, local_path = c.resolve_path(template, "show", "studio"), c.resolve_path(template, "show")
    [(old, new)] = c.dirmap("show").items()
    assert studio_path.replace(old, new, 1) == local_path


def test_guide_documents_every_workflow_command_and_rule_term() -> None:
    from pathlib import Path

    from sitesync.workflows import rules
    from sitesync.workflows.wait import EXIT_CODES

    guide = (Path(__file__).parent.parent / "docs" / "pipeline-integration.md").read_text()
    for command in ("validate", "fsck", "wait", "clear", "wants", "download", "publish", "remove"):
        assert f"sitesync {command} " in guide or f"c.{command}(" in guide, command
    for term in (*rules.KEYWORDS, *(f"{f}:PATTERN" for f in rules.FIELDS), "age<DURATION", "not", "and", "or"):
        assert f"`{term}" in guide, term
    for code in EXIT_CODES.values():
        assert f"| {code} |" in guide
