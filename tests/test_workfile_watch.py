"""The workfile watcher on real files: a save is heard within seconds and the hinted scan takes it;
DCC noise is dropped; where watching is impossible the watcher says so and the caller's loop
keeps working (the periodic scans stay the source of truth)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sitesync.providers.local_drive import LocalDriveProvider
from sitesync.providers.memory import MemoryProvider
from sitesync.workfiles.scan import scan_paths, scan_work_area
from sitesync.workfiles.select import WorkAreaSelector
from sitesync.workfiles.watch import WorkAreaWatcher
from tests.test_crash_and_workers import wait_for


def heard_until(watcher: WorkAreaWatcher, enough: Callable[[set[str]], bool], timeout: float = 10) -> set[str]:
    """The paths the watcher reports until ``enough`` of them were heard (fails after ``timeout``)."""
    heard: set[str] = set()

    def done() -> bool:
        heard.update(watcher.wait(0.5))
        return enough(heard)

    assert wait_for(done, timeout), f"heard only {sorted(heard)}"
    return heard


def _project(tmp_path: Path) -> tuple[LocalDriveProvider, Path]:
    project = tmp_path / "proj"
    (project / "sh010" / "work" / "anim").mkdir(parents=True)
    provider = LocalDriveProvider.from_options("ws", {}, {"work": str(tmp_path)})
    return provider, project  # type: ignore[return-value]


def test_a_save_is_heard_within_seconds_and_the_hinted_scan_takes_it(tmp_path: Path) -> None:
    provider, project = _project(tmp_path)
    selector = WorkAreaSelector.default()
    facts = scan_work_area(provider, str(project), selector, {}).facts
    with WorkAreaWatcher(provider, str(project), selector, debounce_ms=100) as watcher:
        assert watcher.watching and watcher.error is None
        assert watcher.wait(0.2) == set()  # nothing yet: the timeout
        scene = project / "sh010" / "work" / "anim" / "sh010_anim_v001.ma"
        (project / "sh010" / "work" / "anim" / "sh010_anim_v001.ma.swp").write_bytes(b"vim swap")
        scene.write_bytes(b"//Maya ASCII scene\n")
        heard = heard_until(watcher, lambda h: "sh010/work/anim/sh010_anim_v001.ma" in h)
        assert "sh010/work/anim/sh010_anim_v001.ma.swp" not in heard  # ignored noise is dropped
        # the file was just saved: it settles first, then the hinted scan takes it
        old = time.time_ns() - 10_000_000_000
        os.utime(scene, ns=(old, old))
        result = scan_paths(provider, str(project), selector, facts, heard)
        assert [f.path for f in result.new] == ["sh010/work/anim/sh010_anim_v001.ma"]
        # a new task folder with a scene in it, made by a DCC's "save as"
        (project / "sh020" / "work" / "fx").mkdir(parents=True)
        (project / "sh020" / "work" / "fx" / "fx_v001.hip").write_bytes(b"hip")
        heard = heard_until(watcher, lambda h: any(p.startswith("sh020") for p in h))
        found = scan_paths(provider, str(project), selector, result.facts, heard, settle_seconds=0)
        assert "sh020/work/fx/fx_v001.hip" in {f.path for f in found.new}
    assert not watcher.watching


def test_stop_wakes_a_waiting_caller(tmp_path: Path) -> None:
    provider, project = _project(tmp_path)
    watcher = WorkAreaWatcher(provider, str(project), WorkAreaSelector.default())
    assert watcher.start()
    started = time.monotonic()
    import threading

    threading.Timer(0.3, watcher.stop).start()
    assert watcher.wait(30) == set()
    assert time.monotonic() - started < 20  # woken by stop, not by the 30 s timeout


def test_a_storage_that_is_not_a_file_system_cannot_be_watched_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    provider = MemoryProvider.from_options("cloud", {"namespace": "wf-watch"})
    watcher = WorkAreaWatcher(provider, "/p", WorkAreaSelector.default())
    with caplog.at_level(logging.WARNING, logger="sitesync.workfiles"):
        assert watcher.start() is False
    assert not watcher.watching and "not a mounted file system" in (watcher.error or "")
    assert "changes are found by the periodic scans only" in caplog.text
    assert watcher.wait(0.05) == set()  # the caller's loop goes on: it just waits out the timeout


def test_a_missing_folder_cannot_be_watched_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    provider, project = _project(tmp_path)
    watcher = WorkAreaWatcher(provider, str(project / "nothing-here"), WorkAreaSelector.default())
    with caplog.at_level(logging.WARNING, logger="sitesync.workfiles"):
        assert watcher.start() is False
    assert watcher.error and "workfile watcher" in caplog.text


def test_a_mass_change_becomes_one_full_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sitesync.workfiles import watch

    monkeypatch.setattr(watch, "MAX_HINTS", 5)
    provider, project = _project(tmp_path)
    with WorkAreaWatcher(provider, str(project), WorkAreaSelector.default(), debounce_ms=100) as watcher:
        assert watcher.watching
        for i in range(20):
            (project / "sh010" / "work" / "anim" / f"f{i}.ma").write_bytes(b"x")
        heard = heard_until(watcher, lambda h: "" in h)
        assert heard <= {""} | {f"sh010/work/anim/f{i}.ma" for i in range(20)}
        result = scan_paths(provider, str(project), WorkAreaSelector.default(), {}, heard, settle_seconds=0)
        assert len(result.new) == 20  # "" scans everything
