"""SIGKILL during a workfile scan (issue 15): a real ``sitesync work sync`` process is killed while
it reads the work area (a file below it open in the process), once on the first scan of a tree and
once on a scan of edits. The catalog stays consistent: the next pass records exactly the changes,
every file once, nothing lost, no version recorded twice, and the studio gets every file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_crash_and_workers import wait_for
from tests.workfilekit import PROJECT, Machine, Workstations, workstations

FILES = 800


def _tree(m: Machine, tag: bytes, every: int = 1) -> dict[str, bytes]:
    out = {}
    for i in range(0, FILES, every):
        rel = f"seq{i % 10:02d}/sh{i:04d}/work/anim/sh{i:04d}_anim_v001.ma"
        data = tag + f" {i}\n".encode() + bytes(i % 251 for _ in range(16 * 1024))
        m.save(rel, data)
        out[rel] = data
    return out


def _reading_work_area(pid: int, base: Path) -> bool:
    """Whether process ``pid`` has a file below ``base`` open now."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(base) + os.sep):
                    return True
            except OSError:
                continue
    except OSError:
        return False
    return False


def _kill_while_scanning(ws: Workstations) -> None:
    base = ws.a.root / "work" / PROJECT
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitesync", "work", "sync", PROJECT],
        env=ws.a.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: _reading_work_area(proc.pid, base) or proc.poll() is not None, 120, 0.001)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the pass ended before it could be killed mid-scan"


def _at_studio(ws: Workstations) -> dict[str, bytes]:
    """The workfiles on the studio storage (kept versions and markers aside)."""
    return {p: data for p, data in ws.studio_files().items() if not p.startswith(".")}


def _versions(ws: Workstations) -> dict[str, list[tuple[int, str | None]]]:
    store = ws.a.client.store
    pid = store.project(PROJECT).id
    rows = store.workfiles_of(pid)
    versions = store.workfile_versions([w.id for w in rows])
    return {w.path: [(v.number, v.hash) for v in versions[w.id]] for w in rows}


@pytest.mark.slow
def test_sigkill_during_scans_loses_nothing_and_records_nothing_twice(tmp_path: Path, db_url: str, home: Path) -> None:
    with workstations(tmp_path, db_url) as ws:
        first = _tree(ws.a, b"v1")
        _kill_while_scanning(ws)
        assert _versions(ws) == {} and _at_studio(ws) == {}  # killed while scanning: nothing recorded yet
        result = ws.a.sync()
        assert not result.errors, result.errors
        recorded = _versions(ws)
        assert set(recorded) == set(first)
        assert all([n for n, _h in vs] == [1] for vs in recorded.values())
        assert _at_studio(ws) == first

        edited = _tree(ws.a, b"v2", every=3)  # a third of the files saved again
        _kill_while_scanning(ws)
        assert _versions(ws) == recorded  # killed while scanning: the edits are not recorded yet
        result = ws.a.sync()
        assert not result.errors, result.errors
        again = _versions(ws)
        for path, vs in again.items():
            numbers = [n for n, _h in vs]
            assert numbers == ([1, 2] if path in edited else [1]), (path, vs)
            assert vs[0] == recorded[path][0]
        assert _at_studio(ws) == {**first, **edited}
        assert ws.a.sync().versions == 0  # settled: nothing more to record
