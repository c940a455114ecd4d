"""Bad input through the command line: exit code 2, exactly one clear line on stderr, no
traceback, and the state (database and local settings) unchanged.

The refusals run the command's entry point in this process (``tests/cli_inprocess.py``: the same
parsing, messages and exit codes, and an escaping exception fails the test as a traceback would);
the tests below them whose point is the process (an unreachable database, signals, ``--help``, a
real exit status) start a real ``python -m sitesync``."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli_inprocess import run_cli_inprocess
from tests.conftest import Studio, db_snapshot, run_cli
from tests.test_crash_and_workers import wait_for


def assert_refused(studio: Studio, args: list[str], *expected: str) -> str:
    before_db = db_snapshot(studio.db_url)
    local_file = studio.home / "config" / "local.toml"
    before_local = local_file.read_bytes() if local_file.exists() else None
    proc = run_cli_inprocess(*args, env=studio.env())
    assert proc.returncode == 2, f"exit {proc.returncode} for {args}: {proc.stdout}{proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line for {args}, got: {proc.stderr!r}"
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    assert db_snapshot(studio.db_url) == before_db, f"{args} changed the database"
    after_local = local_file.read_bytes() if local_file.exists() else None
    assert after_local == before_local, f"{args} changed the local settings"
    return lines[0]


@pytest.fixture
def cli_studio(sqlite_studio: Studio) -> Studio:
    sqlite_studio.publish([sqlite_studio.write("one.bin", b"1")])
    return sqlite_studio


def test_unknown_things(cli_studio: Studio) -> None:
    assert_refused(cli_studio, ["status", "nope"], "unknown project 'nope'", "sitesync project list")
    assert_refused(cli_studio, ["download", "999"], "unknown representation 999")
    assert_refused(cli_studio, ["download", "1", "--site", "mars"], "unknown site 'mars'")
    assert_refused(cli_studio, ["site", "show", "mars"], "unknown site 'mars'")
    assert_refused(cli_studio, ["pause", "--site", "mars"], "unknown site 'mars'")
    assert_refused(cli_studio, ["site", "add", "x", "--provider", "ftp9000"], "unknown provider 'ftp9000'")
    assert_refused(cli_studio, ["priority", "1", "5000"], "priority", "1 to 1000")


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("retry_count", "0", "retry_count"),
        ("retry_count", "-3", "retry_count"),
        ("retry_count", "many", "retry_count"),
        ("loop_delay", "0", "loop_delay"),
        ("min_copies", "0", "min_copies"),
        ("retry_cnt", "3", "retry_cnt: unknown key"),
        ("active_site", "mars", "unknown site 'mars'"),
        ("remote_site", "bad name!", "invalid site name"),
        ("always_accessible_on", "nowhere", "unknown site 'nowhere'"),
        ("enabled", "maybe", "enabled"),
        ("publish_template", "/abs/{filename}", "publish_template"),
        ("system.enabled", "perhaps", "system.enabled"),
    ],
)
def test_invalid_settings_refused(cli_studio: Studio, key: str, value: str, expected: str) -> None:
    args = (
        ["settings", "set", key, "--", value]
        if key.startswith("system")
        else ["settings", "set", "--project", "show", key, "--", value]
    )
    assert_refused(cli_studio, args, expected)


def test_invalid_local_settings_refused(cli_studio: Studio) -> None:
    assert_refused(cli_studio, ["settings", "set", "--local", "concurrency", "0"], "concurrency")
    assert_refused(cli_studio, ["settings", "set", "--local", "active_site", "mars"], "unknown site 'mars'")


def test_escaping_templates_refused(cli_studio: Studio) -> None:
    for bad in (
        "{root[work]}/../etc/passwd",
        "{root[work]}//abs",
        "/etc/passwd",
        "{root[work]}/C:/x",
        "{root[work]}/a/./b",
    ):
        assert_refused(cli_studio, ["whereis", bad], "catalog path")
    assert_refused(
        cli_studio,
        ["settings", "set", "--project", "show", "publish_template", "{root[work]}/../{filename}"],
        "publish_template",
    )


def test_escaping_publish_template_refused_at_publish(cli_studio: Studio) -> None:
    # a template whose placeholders would produce '..' is refused when the path is built
    f = cli_studio.write("z.bin", b"z")
    assert_refused(
        cli_studio,
        ["publish", "show", str(f), "--folder", "..", "--product", "p", "--version", "1", "--name", "n"],
        "--folder",
    )


def test_publish_missing_file(cli_studio: Studio) -> None:
    ok = cli_studio.write("ok.bin", b"ok")
    assert_refused(
        cli_studio,
        [
            "publish",
            "show",
            str(ok),
            str(cli_studio.workarea / "nope.exr"),
            "--folder",
            "f",
            "--product",
            "p",
            "--version",
            "2",
            "--name",
            "exr",
        ],
        "file not found",
        "nothing was published",
    )


def test_remove_last_copy_refused(cli_studio: Studio) -> None:
    assert_refused(cli_studio, ["remove", "1"], "min_copies=1", "upload them to another site first")


def test_unreachable_database(tmp_path: Path, home: Path) -> None:
    proc = run_cli("--db", "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", "status")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot use the state database" in lines[0] and "127.0.0.1:1" in lines[0]
    proc = run_cli("--db", "mysql://x@127.0.0.1/db", "status")
    assert proc.returncode == 2 and "unsupported database" in proc.stderr
    proc = run_cli("--db", f"sqlite:///{tmp_path / 'fresh.db'}", "status")
    assert proc.returncode == 2 and "run `sitesync init`" in proc.stderr


def test_worker_waits_for_an_unreachable_database_and_stops_cleanly(home: Path) -> None:
    """A service may start before its database server: `worker` logs one line per try and waits
    (an interactive command fails at once, above); SIGTERM ends the wait with exit 0. The real
    server coming back is the PostgreSQL-restart scenario in test_reliability.py."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitesync", "--db", "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/x", "worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read_stderr() -> None:
        for line in proc.stderr or ():
            lines.append(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        # SIGTERM once it has waited twice (it installs its handler before the first wait)
        waited_twice = wait_for(
            lambda: sum("trying again in" in line for line in lines) >= 2 or proc.poll() is not None, 120
        )
        assert proc.poll() is None, f"the worker gave up: {''.join(lines)}"
        assert waited_twice, f"the worker never waited: {''.join(lines)}"
        proc.send_signal(signal.SIGTERM)
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait(timeout=30)
        reader.join(timeout=30)
        err = "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    tries = [line for line in err.splitlines() if "trying again in" in line]
    assert len(tries) >= 2, err
    assert "cannot use the state database" in tries[0] and "127.0.0.1:1" in tries[0]
    assert "Traceback" not in err and "s3cret" not in err + out


def test_password_in_db_url_is_masked(home: Path) -> None:
    proc = run_cli("--db", "postgresql+psycopg://postgres:hunter2secret@127.0.0.1:1/x", "info")
    assert proc.returncode == 2
    assert "hunter2secret" not in proc.stderr + proc.stdout
    assert "***" in proc.stderr


def test_usage_errors_exit_2_with_one_line(cli_studio: Studio) -> None:
    assert_refused(cli_studio, ["publish", "show"], "Missing", "--help")
    assert_refused(cli_studio, ["download", "abc"], "representation", "valid integer", "`sitesync download --help`")
    assert_refused(cli_studio, ["nonsense"], "No such command")


def test_help_and_no_args(cli_studio: Studio) -> None:
    proc = cli_studio.cli("--help")
    assert proc.returncode == 0 and "publish" in proc.stdout
    proc = cli_studio.cli("status", "--help")
    assert proc.returncode == 0 and "--json" in proc.stdout


def test_corrupt_local_settings_file(cli_studio: Studio) -> None:
    path = cli_studio.home / "config" / "local.toml"
    path.write_text("this is [not toml", encoding="utf-8")
    proc = cli_studio.cli("info")
    assert proc.returncode == 2
    assert "is not valid TOML" in proc.stderr and str(path) in proc.stderr
    assert path.read_text(encoding="utf-8") == "this is [not toml", "the broken file must be left for the user"
