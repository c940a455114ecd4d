"""Workfile sync end to end (issue 15): two workstations (two installations, their own site ids and
local roots) sharing one catalog — SQLite and PostgreSQL — with the studio storage as the remote
site. Real files, real providers, the real sync pass; each machine syncs in turn as its worker
would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sitesync.errors import ConflictError, InvalidInputError, NotFoundError
from tests.workfilekit import PROJECT, SCENE, Workstations, workstations


@pytest.fixture
def ws(tmp_path: Path, db_url: str, home: Path) -> Workstations:
    with workstations(tmp_path, db_url) as w:
        yield w


def conflict_copies(files: dict[str, bytes], site: str) -> dict[str, bytes]:
    return {p: d for p, d in files.items() if f".conflict-{site}-" in p}


def test_edit_on_a_appears_on_b_byte_identical(ws: Workstations) -> None:
    first = os.urandom(300_000)
    ws.a.save(SCENE, first)
    result = ws.a.sync()
    assert (result.new, result.versions, result.errors) == (1, 1, [])
    ws.b.sync()
    assert ws.b.read(SCENE) == first
    assert ws.studio_files()[SCENE] == first
    assert [s.state for s in ws.b.client.work_status(PROJECT)] == ["in_sync"]

    second = os.urandom(200_000)
    ws.a.save(SCENE, second)
    ws.settle()
    assert ws.b.read(SCENE) == second == ws.studio_files()[SCENE]
    [status] = ws.a.client.work_status(PROJECT)
    assert (status.state, status.current, status.here, status.remote) == ("in_sync", 2, 2, 2)
    assert status.sites == {"ws-a": 2, "studio": 2}
    # every version is kept in the versions area on the remote site
    kept = sorted(p for p in ws.studio_files() if p.startswith(".sitesync-versions/"))
    assert len(kept) == 2 and all(p.endswith(".ma") for p in kept)
    assert {ws.studio_files()[p] for p in kept} == {first, second}


def test_edits_on_both_from_one_base_keep_both_contents_everywhere(ws: Workstations) -> None:
    ws.a.save(SCENE, b"base")
    ws.settle()
    ws.a.save(SCENE, b"edit on A")
    ws.b.save(SCENE, b"edit on B")
    ws.settle(3)

    assert ws.a.read(SCENE) == b"edit on A"  # nothing overwritten
    assert ws.b.read(SCENE) == b"edit on B"
    assert list(conflict_copies(ws.a.files(), "ws-b").values()) == [b"edit on B"]
    assert list(conflict_copies(ws.b.files(), "ws-a").values()) == [b"edit on A"]
    [name] = conflict_copies(ws.a.files(), "ws-b")
    assert name.startswith("sh010/work/anim/sh010_anim_v001.conflict-ws-b-") and name.endswith(".ma")
    assert ws.studio_files()[SCENE] == b"edit on A" and ws.studio_files()[name] == b"edit on B"

    [conflict] = ws.a.client.work_conflicts(PROJECT)
    assert (conflict.kind, conflict.site, conflict.path, conflict.blocking) == ("edit-edit", "ws-b", SCENE, True)
    assert conflict.conflict_path == name
    assert {s.state for m in ws.machines() for s in m.client.work_status(PROJECT)} == {"conflict"}
    # propagation of the path stopped: another edit on A does not reach B
    ws.a.save(SCENE, b"edit on A again")
    ws.settle()
    assert ws.b.read(SCENE) == b"edit on B"


@pytest.mark.parametrize("keep", ["local", "remote", "both"])
def test_resolve_each_way(ws: Workstations, keep: str) -> None:
    ws.a.save(SCENE, b"base")
    ws.settle()
    ws.a.save(SCENE, b"A")
    ws.b.save(SCENE, b"B")
    ws.settle(3)
    [conflict] = ws.b.client.work_conflicts(PROJECT)

    resolution = ws.b.client.work_resolve(PROJECT, SCENE, keep)  # decided on B: "local" is B's content
    ws.settle(3)
    assert ws.b.client.work_conflicts(PROJECT) == []
    [resolved] = ws.b.client.work_conflicts(PROJECT, include_resolved=True)
    assert resolved.resolution and resolved.resolved_by
    winner = b"B" if keep == "local" else b"A"
    assert ws.a.read(SCENE) == ws.b.read(SCENE) == ws.studio_files()[SCENE] == winner
    states = {(s.path, s.state) for m in ws.machines() for s in m.client.work_status(PROJECT)}
    if keep == "both":
        assert resolution.own_workfiles == [conflict.conflict_path]
        assert ws.a.read(conflict.conflict_path) == ws.b.read(conflict.conflict_path) == b"B"
        assert states == {(SCENE, "in_sync"), (conflict.conflict_path, "in_sync")}
    else:
        assert states == {(SCENE, "in_sync")}
    # the losing content is never deleted: still kept on the remote site
    kept = {d for p, d in ws.studio_files().items() if p.startswith(".sitesync-versions/")}
    assert {b"A", b"B", b"base"} <= kept


@pytest.mark.parametrize("first", ["deleter", "editor"])
def test_delete_on_a_while_b_edits_keeps_b_content(ws: Workstations, first: str) -> None:
    ws.a.save(SCENE, b"base")
    ws.settle()
    ws.a.path(SCENE).unlink()
    ws.b.save(SCENE, b"B's edit")
    order = (ws.a, ws.b) if first == "deleter" else (ws.b, ws.a)
    for _ in range(3):
        for m in order:
            assert not m.sync().errors
    assert ws.a.read(SCENE) == ws.b.read(SCENE) == ws.studio_files()[SCENE] == b"B's edit"
    [conflict] = ws.a.client.work_conflicts(PROJECT)
    assert conflict.kind == "delete-edit" and conflict.site == "ws-a" and not conflict.blocking
    assert "ws-a" in conflict.message and "kept" in conflict.message


def test_deletion_propagates_and_stays_recoverable(ws: Workstations) -> None:
    ws.a.save(SCENE, b"soon deleted")
    ws.settle()
    ws.b.path(SCENE).unlink()
    ws.settle()
    assert ws.a.read(SCENE) is None and SCENE not in ws.studio_files()
    [status] = ws.a.client.work_status(PROJECT)
    assert status.state == "deleted"
    history = ws.a.client.work_history(PROJECT, SCENE)
    assert [(v.kind, v.made_on_site) for v in history] == [("edit", "ws-a"), ("delete", "ws-b")]
    assert history[0].kept
    ws.a.client.work_restore(PROJECT, SCENE, 1)
    ws.settle()
    assert ws.a.read(SCENE) == ws.b.read(SCENE) == b"soon deleted"


def test_rename_moves_the_file_on_the_other_machine(ws: Workstations) -> None:
    ws.a.save(SCENE, b"scene")
    ws.settle()
    new = "sh010/work/anim/sh010_anim_v002.ma"
    ws.a.path(new).parent.mkdir(parents=True, exist_ok=True)
    os.rename(ws.a.path(SCENE), ws.a.path(new))
    assert ws.a.sync().renamed == 1
    ws.settle()
    assert ws.b.read(new) == b"scene" and ws.b.read(SCENE) is None
    assert {s.path: s.state for s in ws.b.client.work_status(PROJECT)} == {SCENE: "deleted", new: "in_sync"}


def test_ignore_patterns_and_paths(tmp_path: Path, db_url: str, home: Path) -> None:
    with workstations(tmp_path, db_url) as ws:
        noise = [
            "sh010/work/anim/sh010_anim_v001.ma.swp",
            "sh010/work/anim/sh010_anim_v001.ma~",
            "sh010/work/anim/.mayaSwatches/sh010_anim_v001.ma.swatches",
            "sh010/work/anim/incrementalSave/sh010_anim_v001.ma.0001",
            "sh010/work/anim/backup/old.ma",
            "sh010/work/anim/.DS_Store",
            "sh010/work/anim/scene.autosave",
            "sh010/publish/model/v001/model.abc",  # not under a work area
        ]
        for rel in [SCENE, *noise]:
            ws.a.save(rel, b"x" + rel.encode())
        ws.settle()
        assert set(ws.b.files()) == {SCENE}
        # a project can replace the defaults
        ws.a.client.settings_set("workfiles.ignore", ["*~"], project=PROJECT)
        ws.settle()
        assert set(ws.b.files()) == {SCENE, *noise[:1], *noise[2:7]}
        ws.b.client.settings_set("workfiles.paths", ["nothing/**"], project=PROJECT)
        ws.a.save("sh020/work/comp/comp.nk", b"nuke")
        ws.settle()
        assert ws.b.read("sh020/work/comp/comp.nk") is None


def test_local_overrides_turn_workfile_sync_off_on_one_machine(ws: Workstations) -> None:
    ws.b.client.settings_set("workfiles.enabled", False, project=PROJECT, local=True)
    with pytest.raises(InvalidInputError, match="workfiles.enabled true"):
        ws.b.sync()
    assert ws.a.client.project_view(PROJECT).workfiles.enabled
    assert ws.a.client.project_view(PROJECT).workfiles.sites == ["ws-a", "studio"]


def test_lock_is_seen_from_the_other_machine_and_an_edit_meanwhile_is_a_conflict(ws: Workstations) -> None:
    ws.a.save(SCENE, b"base")
    ws.settle()
    lock = ws.a.client.work_lock(PROJECT, SCENE)
    assert lock.site == "ws-a"
    [status] = ws.b.client.work_status(PROJECT)
    assert status.state == "locked_by" and status.lock is not None and status.lock.site == "ws-a"
    [mine] = ws.a.client.work_status(PROJECT)
    assert mine.state == "in_sync"  # the holder sees its own lock as no obstacle
    with pytest.raises(ConflictError, match="locked by .* on site ws-a"):
        ws.b.client.work_lock(PROJECT, SCENE)
    with pytest.raises(ConflictError, match="--force"):
        ws.b.client.work_unlock(PROJECT, SCENE)

    ws.b.save(SCENE, b"edited while locked")
    assert ws.b.sync().conflicts == 1
    [conflict] = ws.b.client.work_conflicts(PROJECT)
    assert conflict.kind == "locked-edit" and "locked by" in conflict.message and "@ws-a" in conflict.message
    ws.settle()
    assert ws.a.read(SCENE) == b"base" and ws.b.read(SCENE) == b"edited while locked"

    assert ws.b.client.work_unlock(PROJECT, SCENE, force=True)
    events = ws.a.client.store.events(kinds=["workfile_unlock"])
    assert events and "broken (forced)" in (events[0].message or "")
    assert [s.state for s in ws.b.client.work_status(PROJECT)] == ["conflict"]


def test_restore_an_old_version_and_history(ws: Workstations) -> None:
    for text in (b"one", b"two", b"three"):
        ws.a.save(SCENE, text)
        ws.settle()
    assert ws.b.read(SCENE) == b"three"
    made = ws.b.client.work_restore(PROJECT, SCENE, 1)
    assert (made.number, made.kind, made.parent, made.current) == (4, "restore", 3, True)
    ws.settle()
    assert ws.a.read(SCENE) == ws.b.read(SCENE) == ws.studio_files()[SCENE] == b"one"
    history = ws.a.client.work_history(PROJECT, SCENE)
    assert [(v.number, v.kind, v.parent) for v in history] == [
        (1, "edit", None),
        (2, "edit", 1),
        (3, "edit", 2),
        (4, "restore", 3),
    ]
    assert all(v.kept for v in history) and [v.current for v in history] == [False, False, False, True]
    with pytest.raises(InvalidInputError, match="no version 9"):
        ws.a.client.work_restore(PROJECT, SCENE, 9)
    with pytest.raises(NotFoundError, match="no workfile"):
        ws.a.client.work_history(PROJECT, "sh010/work/none.ma")
    with pytest.raises(InvalidInputError, match="leaves the project folder"):
        ws.a.client.work_history(PROJECT, "../etc/passwd")


def test_a_file_saved_after_the_scan_is_never_replaced_by_an_incoming_version(ws: Workstations) -> None:
    """B's artist saves while B's pass runs: the save is too fresh for the scan (not taken), and the
    incoming version must not replace it: the target is checked by hash when replacing."""
    ws.a.save(SCENE, b"base")
    ws.settle()
    ws.a.save(SCENE, b"A's new version")
    ws.a.sync()
    path = ws.b.path(SCENE)
    path.write_bytes(b"B saving right now")  # mtime now: the scan leaves it for later
    result = ws.b.sync()
    assert SCENE in result.unstable
    assert ws.b.read(SCENE) == b"B saving right now"  # nothing lost
    assert result.conflicts == 1
    [conflict] = ws.b.client.work_conflicts(PROJECT)
    assert conflict.kind == "edit-edit" and conflict.site == "ws-b"
    ws.settle()
    assert ws.b.read(SCENE) == b"B saving right now"
    assert list(conflict_copies(ws.b.files(), "ws-a").values()) == [b"A's new version"]
    assert list(conflict_copies(ws.a.files(), "ws-b").values()) == [b"B saving right now"]
