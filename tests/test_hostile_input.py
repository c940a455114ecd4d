"""Bad input that used to crash, on both faces: the command line exits 2 with one line, the API
answers 422 (a value refused for its key) or 503 (the database cannot be written), never a
traceback or a 500, and nothing changes. Relative root locations are refused (they would resolve
against each process's working folder). Read-only and full disks are real file systems."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sitesync import Client
from sitesync.errors import InvalidSettingError
from tests.apikit import api_client
from tests.cli_inprocess import run_cli_inprocess
from tests.conftest import SITE_ID, Studio, db_snapshot, module_studio, run_cli

API = "/api/v1"
DEEP_RULE = "(" * 400 + "latest" + ")" * 400
NESTING = "sites.local.wants: the rule nests parentheses or 'not' more than 32 deep at column 33; write it flatter"
ABSOLUTE = "is not an absolute path; give the full location (/... or C:\\...), as a relative one would depend on the folder each command runs in"


@pytest.fixture(scope="module")
def hostile_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    with module_studio(tmp_path_factory, "hostile") as studio:
        studio.client.add_site("disk", "local_drive", [f"work={studio.root / 'disk'}"])
        studio.publish([studio.write("one.bin", b"1")])
        yield studio


def _state(studio: Studio) -> tuple[Any, bytes]:
    return db_snapshot(studio.db_url), (studio.home / "config" / "local.toml").read_bytes()


# (command line, its one line, API PUT /settings body or None)
CASES: list[tuple[list[str], str, dict[str, Any] | None]] = [
    (
        ["settings", "set", "--project", "show", "sites.local.wants", DEEP_RULE],
        NESTING,
        {"key": "sites.local.wants", "value": DEEP_RULE, "project": "show"},
    ),
    (
        ["settings", "set", "--project", "show", "roots", '["a"]'],
        "roots: must be a table of root name = path (or = table of platform = path)",
        {"key": "roots", "value": ["a"], "project": "show"},
    ),
    (
        ["settings", "set", "--project", "show", "roots", '{"work": "projects/show"}'],
        f"roots.work: 'projects/show' {ABSOLUTE}",
        {"key": "roots", "value": {"work": "projects/show"}, "project": "show"},
    ),
    (
        ["settings", "set", "--project", "show", "roots.work", '{"windows": "P:projects"}'],
        "roots.work.windows: 'P:projects' is not an absolute path; give the full location (C:\\... or "
        "\\\\server\\share\\...), as a relative one would depend on the folder each command runs in",
        {"key": "roots.work", "value": {"windows": "P:projects"}, "project": "show"},
    ),
    (
        ["settings", "set", "system.sites.disk.roots.work", "disk"],
        f"system.sites.disk.roots.work: 'disk' {ABSOLUTE}",
        {"key": "system.sites.disk.roots.work", "value": "disk"},
    ),
    (
        ["settings", "set", "--project", "show", "sites.local.roots", '{"work": "~/work"}'],
        f"sites.local.roots.work: '~/work' {ABSOLUTE}",
        {"key": "sites.local.roots", "value": {"work": "~/work"}, "project": "show"},
    ),
    (
        ["settings", "set", "--local", "local_root", "sitesync-files"],
        f"local settings: local_root: 'sitesync-files' {ABSOLUTE}",
        {"key": "local_root", "value": "sitesync-files", "local": True},
    ),
    (
        ["settings", "set", "--local", "roots.local.work", "work"],
        f"local settings: default.roots: root 'work' of site 'local': 'work' {ABSOLUTE}",
        {"key": "roots.local.work", "value": "work", "local": True},
    ),
    (
        ["settings", "set", "--project", "show", "always_accessible_on", '{"a": 1}'],
        "always_accessible_on: must be a list",
        {"key": "always_accessible_on", "value": {"a": 1}, "project": "show"},
    ),
    (
        ["settings", "set", "system.sites", '["disk"]'],
        "system.sites: must be a table of keys and values",
        {"key": "system.sites", "value": ["disk"]},
    ),
    (
        ["settings", "set", "--local", "sites.disk.options", '{"fsync": null}'],
        "the value holds null inside a table or list, which settings cannot store (TOML has no null); leave the "
        "entry out instead",
        {"key": "sites.disk.options", "value": {"fsync": None}, "local": True},
    ),
    (
        ["settings", "set", "--project", "show", "retry_count", "[" * 50 + "]" * 50],
        "the value nests lists or tables more than 24 levels deep",
        {"key": "retry_count", "value": json.loads("[" * 50 + "]" * 50), "project": "show"},
    ),
]


@pytest.mark.parametrize(("args", "line", "body"), CASES, ids=[" ".join(a)[:60] for a, _, _ in CASES])
def test_settings_values_that_crashed(hostile_studio: Studio, args: list[str], line: str, body: Any) -> None:
    before = _state(hostile_studio)
    proc = run_cli_inprocess(*args, env=hostile_studio.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"error: {line}"]
    assert _state(hostile_studio) == before
    with api_client(hostile_studio) as http:
        answer = http.put(f"{API}/settings", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"detail": line, "error": "InvalidSettingError"}
    assert _state(hostile_studio) == before


def test_settings_import_of_binary_or_deeply_nested_files(hostile_studio: Studio, tmp_path: Path) -> None:
    binary = tmp_path / "settings.toml"
    binary.write_bytes(b"\x00\x01\xff\xfe settings")
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    nested = tmp_path / "nested.toml"
    nested.write_text("[default_project]\nroots = " + "[" * 40 + "]" * 40 + "\n")
    before = _state(hostile_studio)
    for path, line in (
        (binary, f"{binary} is not UTF-8 text (a TOML settings export?); nothing was imported"),
        (deep, "the TOML nests tables or arrays too deeply; nothing was imported"),
        (nested, "the imported settings nests lists or tables more than 24 levels deep"),
        (tmp_path, f"cannot read {tmp_path}: Is a directory"),
    ):
        proc = hostile_studio.cli("settings", "import", str(path))
        assert proc.returncode == 2 and proc.stderr.splitlines() == [f"error: {line}"], proc.stderr
    with pytest.raises(InvalidSettingError, match="nests tables or arrays too deeply"):
        hostile_studio.client.settings_import(deep.read_text())
    assert _state(hostile_studio) == before


BIG = "99999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ["download", BIG],
        ["upload", BIG],
        ["remove", BIG],
        ["reset", BIG],
        ["priority", BIG, "5"],
        ["status", "--representation", BIG],
        ["pause", "--representation", BIG],
        ["wait", BIG, "--timeout", "1"],
        ["whereis", BIG],
        ["status", "show", "--limit", BIG],
        ["status", "show", "--offset", BIG],
        ["reset", "1", "--file", BIG],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_ids_beyond_64_bits(hostile_studio: Studio, args: list[str]) -> None:
    before = _state(hostile_studio)
    proc = run_cli_inprocess(*args, env=hostile_studio.env())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and BIG in proc.stderr and "Traceback" not in proc.stderr
    assert _state(hostile_studio) == before


def test_ids_beyond_64_bits_through_the_api(hostile_studio: Studio) -> None:
    with api_client(hostile_studio) as http:
        for method, path in (("GET", f"/representations/{BIG}"), ("POST", f"/representations/{BIG}/download")):
            answer = http.request(method, API + path, json={} if method == "POST" else None)
            assert answer.status_code == 422 and "rep_id" in answer.json()["detail"], answer.text


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_on_an_impossible_port(hostile_studio: Studio, port: str) -> None:
    proc = hostile_studio.cli("serve", "--port", port)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: invalid --port {port}: use a port from 1 to 65535 (0 picks a free one)"
    ]


@contextmanager
def tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    """A real small file system (needs root, as the reliability scenarios)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _cli(home: Path, *args: str, site_id: bool = True, db: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITESYNC_")}
    env["SITESYNC_HOME"] = str(home)
    if site_id:
        env["SITESYNC_SITE_ID"] = SITE_ID
    if db:
        env["SITESYNC_DB"] = db
    return run_cli(*args, env=env)


def test_sitesync_home_that_cannot_be_used(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    proc = _cli(a_file, "info")
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"error: SITESYNC_HOME={a_file} is a file, not a folder; point it at a folder (it is created if missing)"
    ]
    for args, site_id in ((["init"], True), (["info"], False)):
        proc = _cli(Path("/proc/sitesync-home"), *args, site_id=site_id)
        assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
        assert proc.stderr.startswith("error: cannot create the ") and "/proc/sitesync-home/" in proc.stderr
    with tmpfs(tmp_path / "ro") as mount:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        for args, site_id in ((["init"], True), (["info"], False)):
            proc = _cli(mount / "home", *args, site_id=site_id)
            assert proc.returncode == 2, proc.stderr
            folder = (
                "folder of the state database " + str(mount / "home" / "data")
                if site_id
                else f"folder {mount / 'home' / 'config'}"
            )
            assert proc.stderr.splitlines() == [
                f"error: cannot create the {folder}: the file system is read-only; point SITESYNC_HOME (or --db) at "
                "a folder this user can write"
            ]


def test_sqlite_on_a_full_or_read_only_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITESYNC_SITE_ID", SITE_ID)
    with tmpfs(tmp_path / "disk") as mount:
        home = mount / "home"
        db = home / "data" / "sitesync.db"
        assert _cli(home, "init").returncode == 0
        assert _cli(home, "project", "create", "show", "--root", f"work={tmp_path / 'studio'}").returncode == 0
        before = db_snapshot(f"sqlite:///{db}")
        filler = mount / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
        full = (
            f"cannot write the state database {db}: no space is left on the device holding it; free some space and "
            "retry; nothing was changed"
        )
        proc = _cli(home, "project", "create", "other", "--root", f"work={tmp_path / 'other'}")
        assert proc.returncode == 2 and proc.stderr.splitlines() == [f"error: {full}"], proc.stderr
        client = Client(db=f"sqlite:///{db}", home=home)
        try:
            with api_client(SimpleNamespace(client=client)) as http:  # type: ignore[arg-type]
                answer = http.put(f"{API}/settings", json={"key": "retry_count", "value": 7, "project": "show"})
                assert answer.status_code == 503 and answer.json() == {"detail": full, "error": "DatabaseError"}
        finally:
            client.close()
        filler.unlink()
        assert db_snapshot(f"sqlite:///{db}") == before
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        read_only = (
            f"cannot write the state database {db}: the file system holding it is read-only; remount it read-write "
            "or use another --db; nothing was changed"
        )
        proc = _cli(home, "settings", "set", "--project", "show", "retry_count", "7")
        assert proc.returncode == 2 and proc.stderr.splitlines() == [f"error: {read_only}"], proc.stderr
        reading = _cli(home, "status")  # SQLite's write-ahead log needs a writable folder even to read
        assert reading.returncode in (0, 2) and reading.stderr.splitlines() in ([], [f"error: {read_only}"])
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
        assert db_snapshot(f"sqlite:///{db}") == before


def test_settings_import_refuses_relative_roots(hostile_studio: Studio, tmp_path: Path) -> None:
    exported = hostile_studio.cli("settings", "export", check=True).stdout
    studio_root = str(hostile_studio.studio_root)
    assert studio_root in exported
    path = tmp_path / "relative.toml"
    path.write_text(exported.replace(f'"{studio_root}"', '"projects"'))
    before = _state(hostile_studio)
    proc = hostile_studio.cli("settings", "import", str(path))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: projects.show: roots.work: 'projects' {ABSOLUTE}; nothing was imported"
    ]
    assert _state(hostile_studio) == before
