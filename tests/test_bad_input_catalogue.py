"""The bad-input catalogue: every case asserts the exact line the user sees, exit code 2, and that
neither the database nor the local settings file changed."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sitesync.state.database import head_revision
from tests.cli_inprocess import run_cli_inprocess
from tests.conftest import Studio, db_snapshot, run_cli


@pytest.fixture(scope="module")
def catalogue_studio(tmp_path_factory: pytest.TempPathFactory) -> Studio:
    from tests.conftest import make_studio

    tmp = tmp_path_factory.mktemp("catalogue")
    mp = pytest.MonkeyPatch()
    home = tmp / "home"
    mp.setenv("SITESYNC_HOME", str(home))
    mp.setenv("SITESYNC_SITE_ID", "ws-test")
    studio = make_studio(tmp, f"sqlite:///{tmp / 'state.db'}", home)
    studio.publish([studio.write("one.bin", b"1")])
    yield studio
    studio.client.close()
    mp.undo()


CASES = [
    # settings: wrong types, out of range, unknown keys, sites and providers
    (["settings", "set", "--project", "show", "retry_count", "--", "-1"], "retry_count: must be at least 1 (got -1)"),
    (["settings", "set", "--project", "show", "retry_count", "0"], "retry_count: must be at least 1 (got 0)"),
    (["settings", "set", "--project", "show", "retry_count", "abc"], "retry_count: must be a whole number (got 'abc')"),
    (["settings", "set", "--project", "show", "retry_count", "2.5"], "retry_count: must be a whole number (got 2.5)"),
    (["settings", "set", "--project", "show", "loop_delay", "0"], "loop_delay: must be greater than 0 (got 0)"),
    (["settings", "set", "--project", "show", "min_copies", "--", "-2"], "min_copies: must be at least 1 (got -2)"),
    (
        ["settings", "set", "--project", "show", "enabled", "yes-please"],
        "enabled: must be true or false (got 'yes-please')",
    ),
    (
        ["settings", "set", "--project", "show", "retry_cnt", "3"],
        "retry_cnt: unknown key; `sitesync settings show --effective` lists the keys",
    ),
    (
        ["settings", "set", "--project", "show", "active_site", "nowhere"],
        "active_site: unknown site 'nowhere'; use studio, local or a site defined with `sitesync site add` (none defined yet)",
    ),
    (
        ["settings", "set", "--project", "show", "remote_site", "local"],
        "active_site and remote_site are both 'local': nothing would be synced; choose two different sites "
        "(both 'studio' means site sync is not used)",
    ),
    (
        ["settings", "set", "--project", "show", "always_accessible_on", "nowhere"],
        "always_accessible_on: unknown site 'nowhere'; define it with `sitesync site add`",
    ),
    (
        ["site", "add", "s3x", "--provider", "nosuch"],
        "unknown provider 'nosuch'; installed providers: {providers}",
    ),
    (
        ["settings", "set", "system.sites.x.provider", "ftp"],
        "system.sites.x.provider: unknown provider 'ftp'; installed providers: {providers}",
    ),
    (
        ["settings", "set", "--project", "show", "roots.work", "42"],
        "roots: root 'work' must be a path or a table of platform = path",
    ),
    (
        ["settings", "set", "--project", "show", "publish_template", "{root[work]}/{shot}/{filename}"],
        "publish_template: unknown placeholder {shot}; use filename, folder, name, product, project, version",
    ),
    (["settings", "set", "--local", "concurrency", "0"], "local settings: concurrency: must be at least 1 (got 0)"),
    (
        ["settings", "set", "--project", "ghost", "retry_count", "3"],
        "unknown project 'ghost'; see `sitesync project list`",
    ),
    # path templates
    (
        ["whereis", "{root[work]}/../x"],
        "catalog path '{root[work]}/../x': the path has an empty, '.' or '..' component; it must stay inside its root",
    ),
    (
        ["whereis", "{root[work]}//etc/passwd"],
        "catalog path '{root[work]}//etc/passwd': the path below the root must be relative, not absolute",
    ),
    (["whereis", "{root[work]}/C:/x"], "catalog path '{root[work]}/C:/x': the path must not start with a drive letter"),
    (
        ["whereis", "{root[work]}/" + "x" * 256],
        "catalog path '{root[work]}/" + "x" * 256 + "': a path component is longer than 255 bytes",
    ),
    (
        ["whereis", "{root[work]}/caf" + unicodedata.normalize("NFD", "é")],
        "catalog path '{root[work]}/caf"
        + unicodedata.normalize("NFD", "é")
        + "': 'caf"
        + unicodedata.normalize("NFD", "é")
        + "' is not in Unicode NFC form (a decomposed name, as macOS can create); rename it to its composed "
        "form, e.g. with `convmv -f utf8 -t utf8 --nfc`",
    ),
    (
        ["whereis", "work/x.exr"],
        "no published file matches 'work/x.exr'; give a representation id, a catalog path or a path under a site root",
    ),
    # publish arguments
    (
        [
            "publish",
            "show",
            "{workarea}/one.bin",
            "--folder",
            "a/../b",
            "--product",
            "p",
            "--version",
            "1",
            "--name",
            "n",
        ],
        "--folder 'a/../b' must not contain empty, '.' or '..' parts",
    ),
    (
        ["publish", "show", "{workarea}/one.bin", "--folder", "f", "--product", "p/q", "--version", "1", "--name", "n"],
        "--product 'p/q' must not contain '/' or '\\'",
    ),
    (
        ["publish", "show", "{workarea}/one.bin", "--folder", "f", "--product", "p", "--version", "v1b", "--name", "n"],
        "invalid version 'v1b': use a number (3, v003) or 'hero'",
    ),
    (
        ["publish", "show", "{workarea}/nope.exr", "--folder", "f", "--product", "p", "--version", "1", "--name", "n"],
        "file not found: {workarea}/nope.exr; nothing was published",
    ),
    (
        ["publish", "show", "{workarea}", "--folder", "f", "--product", "p", "--version", "1", "--name", "n"],
        "not a regular file: {workarea}; publish files, not folders",
    ),
    # other command-line arguments
    (["priority", "1", "0"], "invalid priority 0: use a whole number from 1 to 1000 (higher goes first)"),
    (["download", "999"], "unknown representation 999; see `sitesync status PROJECT`"),
    (["download", "1", "--site", "mars"], "unknown site 'mars' in project 'show'; known: studio, ws-test"),
    (
        ["status", "--limit", "x"],
        "Invalid value for '--limit': Input should be a valid integer, unable to parse string as an integer; "
        "see `sitesync status --help`",
    ),
    (["pause", "--representation", "1", "--project", "show"], "give --representation or --project, not both"),
]


def _check_refused(studio: Studio, args: list[str], expected: str, run: Callable[..., Any]) -> None:
    from sitesync.providers.registry import provider_names

    fill = {"workarea": str(studio.workarea), "providers": ", ".join(provider_names())}
    args = [a.replace("{workarea}", fill["workarea"]) for a in args]
    expected = expected.replace("{workarea}", fill["workarea"]).replace("{providers}", fill["providers"])
    local_file = studio.home / "config" / "local.toml"
    before = (db_snapshot(studio.db_url), local_file.read_bytes())
    proc = run(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"error: {expected}"]
    assert (db_snapshot(studio.db_url), local_file.read_bytes()) == before


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input(catalogue_studio: Studio, args: list[str], expected: str) -> None:
    """Each case through the command's entry point in this process (tests/cli_inprocess.py): the
    same parsing, messages and exit code, without a process start per case."""
    studio = catalogue_studio
    _check_refused(studio, args, expected, lambda *a: run_cli_inprocess(*a, env=studio.env()))


# the process boundary itself (exit status, stderr of a real `python -m sitesync`), for a sample
@pytest.mark.parametrize(("args", "expected"), [CASES[0], CASES[-1]], ids=["first", "last"])
def test_bad_input_in_a_real_process(catalogue_studio: Studio, args: list[str], expected: str) -> None:
    _check_refused(catalogue_studio, args, expected, catalogue_studio.cli)


def test_corrupt_local_settings_file(catalogue_studio: Studio) -> None:
    path = catalogue_studio.home / "config" / "local.toml"
    original = path.read_bytes()
    try:
        path.write_text("concurrency = 'lots'\n", encoding="utf-8")
        proc = catalogue_studio.cli("info")
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [
            f"error: local settings file {path}: concurrency: must be a whole number (got 'lots'); fix it or move it away"
        ]
        path.write_text("[default\n", encoding="utf-8")
        proc = catalogue_studio.cli("info")
        assert proc.returncode == 2 and proc.stderr.startswith(f"error: local settings file {path} is not valid TOML")
        assert proc.stderr.rstrip().endswith("fix it or move it away to start fresh")
        assert path.read_text(encoding="utf-8") == "[default\n", "the broken file is the user's: never overwritten"
    finally:
        path.write_bytes(original)


def test_missing_local_settings_file_means_defaults(tmp_path: Path, home: Path) -> None:
    proc = run_cli("--db", f"sqlite:///{tmp_path / 's.db'}", "init")
    assert proc.returncode == 0
    proc = run_cli("--db", f"sqlite:///{tmp_path / 's.db'}", "info", "--json")
    assert proc.returncode == 0 and '"site_id": "ws-test"' in proc.stdout
    assert not (home / "config" / "local.toml").exists(), "reading settings must not create the file"


def test_database_at_a_newer_schema(tmp_path: Path, home: Path) -> None:
    db = tmp_path / "future.db"
    assert run_cli("--db", f"sqlite:///{db}", "init").returncode == 0
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099_future'"))
    engine.dispose()
    before = db.read_bytes()
    for args in (["status"], ["init"]):
        proc = run_cli("--db", f"sqlite:///{db}", *args)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [
            f"error: the state database sqlite:///{db} has schema revision 0099_future, newer than this "
            "sitesync knows"
            + (
                f" ({head_revision()}); upgrade sitesync on this machine"
                if args == ["status"]
                else "; upgrade sitesync on this machine"
            )
        ]
    assert db.read_bytes() == before


def test_missing_database_is_not_created(tmp_path: Path, home: Path) -> None:
    db = tmp_path / "sub" / "none.db"
    proc = run_cli("--db", f"sqlite:///{db}", "status")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: no sitesync state database at {db}; run `sitesync init` to create it"]
    assert not db.exists() and not db.parent.exists()
