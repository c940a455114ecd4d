"""The ``sitesync work`` commands as real processes on two workstations sharing one catalog: the
JSON they print, bad input (exit 2, one line, nothing changed), a lock seen from the other machine,
and the worker (``sitesync sync --once``) running the workfile step for an enabled project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workfilekit import PROJECT, SCENE, Workstations, workstations


@pytest.fixture
def ws(tmp_path: Path, sqlite_url: str, home: Path) -> Workstations:
    with workstations(tmp_path, sqlite_url) as w:
        yield w


def ok(proc) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, f"{proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_sync_status_history_and_lock_through_the_cli(ws: Workstations) -> None:
    ws.a.save(SCENE, b"from A")
    result = json.loads(ok(ws.a.cli("work", "sync", PROJECT, "--json")))
    assert (result["versions"], result["errors"]) == (1, [])
    ok(ws.b.cli("work", "sync", PROJECT))
    assert ws.b.read(SCENE) == b"from A"

    [status] = json.loads(ok(ws.b.cli("work", "status", PROJECT, "--json")))
    assert (status["path"], status["state"], status["here"], status["remote"]) == (SCENE, "in_sync", 1, 1)
    assert json.loads(ok(ws.b.cli("work", "status", PROJECT, "--path", "*.nk", "--json"))) == []

    lock = json.loads(ok(ws.a.cli("work", "lock", PROJECT, SCENE, "--json")))
    assert lock["site"] == "ws-a"
    [seen] = json.loads(ok(ws.b.cli("work", "status", PROJECT, "--json")))
    assert seen["state"] == "locked_by" and seen["lock"]["site"] == "ws-a"
    table = ok(ws.b.cli("work", "status", PROJECT))
    assert "locked_by" in table and "@ws-a" in table
    refused = ws.b.cli("work", "lock", PROJECT, SCENE)
    assert refused.returncode == 2 and "locked by" in refused.stderr and "ws-a" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(ok(ws.a.cli("work", "unlock", PROJECT, SCENE, "--json"))) == {"unlocked": True}

    history = json.loads(ok(ws.a.cli("work", "history", PROJECT, SCENE, "--json")))
    assert [(v["number"], v["kind"], v["made_on_site"], v["current"]) for v in history] == [(1, "edit", "ws-a", True)]
    assert json.loads(ok(ws.a.cli("work", "conflicts", PROJECT, "--json"))) == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("work", "resolve", PROJECT, SCENE, "--keep", "mine"), "--keep must be local, remote or both"),
        (("work", "restore", PROJECT, "../../etc/passwd", "--version", "1"), "leaves the project folder"),
        (("work", "restore", PROJECT, SCENE, "--version", "0"), "--version must be"),
        (("work", "restore", PROJECT, SCENE, "--version", "x"), "--version"),
        (("work", "history", PROJECT, "/abs/path.ma"), "is absolute"),
        (("work", "history", PROJECT, "sh010/work/none.ma"), "no workfile"),
        (("work", "status", "nosuchproject"), "unknown project"),
        (("work", "resolve", PROJECT, SCENE, "--keep", "local"), "no open conflict"),
        (("work", "unlock", PROJECT, SCENE, "--bogus"), "--bogus"),
    ],
)
def test_bad_input_exits_2_with_one_line(ws: Workstations, args: tuple[str, ...], words: str) -> None:
    ws.a.save(SCENE, b"content")
    ws.a.sync()
    before = ws.a.files()
    proc = ws.a.cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert ws.a.files() == before


def test_work_sync_refused_while_workfile_sync_is_off(tmp_path: Path, sqlite_url: str, home: Path) -> None:
    with workstations(tmp_path, sqlite_url, enabled=False) as ws:
        proc = ws.a.cli("work", "sync", PROJECT)
        assert proc.returncode == 2 and "workfiles.enabled true" in proc.stderr


def test_the_worker_runs_the_workfile_step(ws: Workstations) -> None:
    ws.a.save(SCENE, b"picked up by the worker")
    ok(ws.a.cli("sync", "--once", "--project", PROJECT))
    ok(ws.b.cli("sync", "--once", "--project", PROJECT))
    assert ws.b.read(SCENE) == b"picked up by the worker"
