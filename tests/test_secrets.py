"""Configured secrets never appear in CLI output (``settings set`` answers included), logs at any
level for every provider (third-party libraries' debug logs included), settings exports (unless
asked for with --include-secrets), the event history, or error messages; and the files holding
them (database, local settings, API token) are readable by their owner only."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import Studio, db_snapshot, define_site, run_cli
from tests.remote_servers import new_bucket, new_remote_folder
from tests.servers import rclone_binary, rclone_serve
from tests.test_crash_and_workers import wait_for
from tests.test_dropbox import dropbox_server as dropbox_server  # the fake Dropbox, a fixture
from tests.test_gdrive import drive_server as drive_server  # the fake Drive, a fixture

SECRET = "Zq7-s3cr3t-VALUE-do-not-print"


def test_secrets_never_leak(sqlite_studio: Studio, tmp_path: Path) -> None:
    studio = sqlite_studio
    c = studio.client
    c.add_site("vault", "memory", [f"work={tmp_path / 'vault'}"], {"namespace": "vault", "token": SECRET})
    c.settings_set("sites.vault.options", {"token": SECRET + "-project"}, project="show")
    outputs: list[str] = []

    def cli(*args: str) -> None:
        proc = studio.cli(*args)
        outputs.append(proc.stdout + proc.stderr)

    cli("info")
    cli("info", "--json")
    cli("site", "list")
    cli("site", "list", "--json", "--project", "show")
    cli("site", "show", "vault")
    cli("site", "show", "vault", "--json", "--project", "show")
    cli("settings", "show")
    cli("settings", "show", "--json")
    cli("settings", "show", "--project", "show", "--json")
    cli("settings", "show", "--project", "show", "--effective", "--json")
    cli("settings", "export")
    # a value of the wrong type for a secret must not be echoed back in the error
    cli("settings", "set", "system.sites.vault.options.token", "12345678")
    cli("settings", "set", "system.sites.vault.options.token", '["' + SECRET + '"]')
    cli("site", "add", "vault2", "--provider", "memory", "--set", 'token=["' + SECRET + '"]')
    rep = studio.publish([studio.write("a.bin", b"a")])
    cli("upload", str(rep), "--site", "vault")
    # a worker logging at debug level into a file
    log = tmp_path / "worker.log"
    proc = subprocess.run(
        [sys.executable, "-m", "sitesync", "sync", "--once", "--json"], env=studio.env(), capture_output=True, text=True
    )
    outputs.append(proc.stdout + proc.stderr)
    with open(log, "w") as fh:
        worker = subprocess.Popen(
            [sys.executable, "-m", "sitesync", "worker", "--log-level", "debug"],
            env=studio.env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        # SIGTERM only once the worker runs (its handler is installed right after this line)
        started = wait_for(lambda: " started (database " in log.read_text() or worker.poll() is not None, 120)
        assert started, "the worker never started"
        # a whole turn of its debug-level loop, until it goes idle
        assert wait_for(lambda: "idle: sleeping up to" in log.read_text() or worker.poll() is not None, 120)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    outputs.append(log.read_text())
    everything = "\n".join(outputs)
    assert "12345678" not in everything
    assert SECRET not in everything, "a secret leaked into CLI output or logs"
    assert "********" in everything
    # the event history and every other table except the settings documents themselves
    snapshot = db_snapshot(studio.db_url)
    for table, rows in snapshot.items():
        if table == "settings":
            continue
        assert SECRET not in repr(rows), f"secret found in table {table}"
    # asked for explicitly, it is there
    explicit = studio.cli("settings", "export", "--include-secrets")
    assert SECRET in explicit.stdout


# ---------------------------------------------------------------------- settings set answers


def test_settings_set_never_echoes_a_secret(sqlite_studio: Studio, tmp_path: Path) -> None:
    c = sqlite_studio.client
    c.add_site("vault", "memory", [f"work={tmp_path / 'vault'}"], {"namespace": "vault"})
    c.add_site("rc", "rclone", [], {"type": "webdav", "options": {"url": "http://127.0.0.1:9"}})
    outputs = []
    for args in (
        ["settings", "set", "system.sites.vault.options.token", SECRET],
        ["settings", "set", "system.sites.vault.options.token", SECRET, "--json"],
        ["settings", "set", "system.sites.vault.options", json.dumps({"namespace": "vault", "token": SECRET})],
        ["settings", "set", "system.sites.rc.options.secrets.pass", SECRET],
        ["settings", "set", "system.sites.rc.options.secrets", json.dumps({"pass": SECRET}), "--json"],
        ["settings", "set", "--project", "show", "sites.vault.options.token", SECRET],
        ["settings", "set", "--local", "sites.vault.options.token", SECRET, "--json"],
        ["settings", "set", "--local", "sites.vault.options.token", SECRET],
        ["settings", "show", "--json"],
    ):
        proc = sqlite_studio.cli(*args)
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    everything = "\n".join(outputs)
    assert SECRET not in everything
    assert outputs[0].strip() == "system: sites.vault.options.token = '********'"
    assert json.loads(outputs[1])["value"] == "********"
    assert json.loads(outputs[2].split(" = ", 1)[1].replace("'", '"'))["token"] == "********"


# ---------------------------------------------------------------------- private files


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_created_private_and_init_tightens_old_ones(tmp_path: Path, home: Path) -> None:
    run_cli("init", check=True)
    run_cli("settings", "set", "--local", "concurrency", "2", check=True)
    run_cli("token", "show", check=True)
    db = home / "data" / "sitesync.db"
    for folder in (home, home / "data", home / "config"):
        assert _mode(folder) == 0o700, folder
    for path in (db, home / "config" / "local.toml", home / "config" / "api_token"):
        assert _mode(path) == 0o600, path
    # a database and folders made by an older sitesync (world-readable) are tightened by init
    for path, mode in (
        (db, 0o644),
        (home / "data", 0o755),
        (home / "config", 0o755),
        (home / "config" / "local.toml", 0o644),
    ):
        path.chmod(mode)
    proc = run_cli("init", check=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("made private")]
    assert sorted(lines) == sorted(
        [
            f"made private (readable by its owner only): {home / 'config'} (0755 -> 0700)",
            f"made private (readable by its owner only): {home / 'data'} (0755 -> 0700)",
            f"made private (readable by its owner only): {home / 'config' / 'local.toml'} (0644 -> 0600)",
            f"made private (readable by its owner only): {db} (0644 -> 0600)",
        ]
    )
    assert _mode(db) == 0o600 and _mode(home / "data") == 0o700
    assert json.loads(run_cli("init", "--json", check=True).stdout)["tightened"] == []
    # a database elsewhere: its own folder is not sitesync's to change, the file is
    other = tmp_path / "shared-folder"
    other.mkdir(mode=0o755)
    other.chmod(0o755)
    run_cli("--db", f"sqlite:///{other / 'state.db'}", "init", check=True)
    assert _mode(other / "state.db") == 0o600 and _mode(other) == 0o755


# ---------------------------------------------------------------------- logs at debug level


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.names: set[str] = set()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.names.add(record.name.split(".")[0])
        self.lines.append(self.format(record))


@contextmanager
def debug_logs() -> Iterator[_Collect]:
    """Every logger of the process at debug level, as an admin chasing a problem would set it."""
    root = logging.getLogger()
    handler = _Collect()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def _sync_through(studio: Studio, site: str, options: dict[str, Any], roots: list[str]) -> None:
    """Upload a publish to ``site`` and run its contract checks, all at debug level."""
    define_site(studio.client, site, options.pop("provider"), roots, options)
    studio.client.settings_set("remote_site", site, project="show")
    studio.publish([studio.write(f"{site}.bin", os.urandom(3000))], product=f"leak{site}")
    report = studio.sync()
    assert report.transferred >= 1, report.errors
    result = studio.client.site_test(site, project="show", only=["reachable", "write_read_roundtrip"])
    assert result["ok"], result["checks"]


def _assert_no_secret(logs: _Collect, secrets: list[str], expected_loggers: set[str]) -> None:
    text = "\n".join(logs.lines)
    assert expected_loggers <= logs.names, f"debug logging did not reach {expected_loggers - logs.names}"
    for secret in secrets:
        for part in [secret, *(line for line in secret.splitlines() if len(line) >= 16)]:
            assert part not in text, f"a configured secret reached the logs: {part[:12]}..."


def test_no_secret_in_debug_logs_s3(sqlite_studio: Studio, moto_s3: Any) -> None:
    key_id, secret, session = (
        "AKIALEAKCHECK7F3A9C01",
        "leak-check-s3-secret-7f3a9c",
        "FQoGZXIvYXdzleakchecksession7f3a9c",
    )
    bucket = new_bucket(moto_s3)
    options = {
        "provider": "s3",
        **moto_s3.options(bucket),
        "access_key_id": key_id,
        "secret_access_key": secret,
        "session_token": session,
    }
    with debug_logs() as logs:
        _sync_through(sqlite_studio, "bucket", options, ["work=projects"])
    _assert_no_secret(logs, [key_id, secret, session], {"botocore", "urllib3"})
    text = "\n".join(logs.lines)
    assert "Authorization" in text and "********" in text, "botocore's signed headers were logged, redacted"


def test_no_secret_in_debug_logs_sftp(sqlite_studio: Studio, sshd: Any, tmp_path: Path, monkeypatch) -> None:
    from tests.servers import _keygen

    passphrase = "leak-check-sftp-passphrase-7f3a9c"
    key = tmp_path / "locked_key"
    _keygen(key, passphrase=passphrase)
    authorized = sshd.workdir / "authorized_keys"
    authorized.write_text(authorized.read_text() + (tmp_path / "locked_key.pub").read_text())
    monkeypatch.setenv("SITESYNC_LEAK_PASSPHRASE", passphrase)
    folder = new_remote_folder(sshd)
    options = {
        "provider": "sftp",
        **sshd.options(base_path=str(folder)),
        "key_file": str(key),
        "key_passphrase": "env:SITESYNC_LEAK_PASSPHRASE",
    }
    with debug_logs() as logs:
        _sync_through(sqlite_studio, "vendor", options, ["work=/projects"])
    _assert_no_secret(logs, [passphrase, key.read_text()], {"asyncssh"})


def test_no_secret_in_debug_logs_rclone(sqlite_studio: Studio, tmp_path: Path, monkeypatch) -> None:
    password = "leak-check-rclone-pass-7f3a9c"
    served = tmp_path / "webdav"
    served.mkdir()
    proc, addr = rclone_serve("webdav", served, tmp_path / "cache", ["--user", "artist", "--pass", password])
    monkeypatch.setenv("SITESYNC_LEAK_PASS", password)
    try:
        options = {
            "provider": "rclone",
            "type": "webdav",
            "options": {"url": f"http://{addr}", "vendor": "other", "user": "artist"},
            "secrets": {"pass": "env:SITESYNC_LEAK_PASS"},
            "extra_args": ["-vv"],  # rclone's own debug log, which sitesync logs at debug level
        }
        with debug_logs() as logs:
            _sync_through(sqlite_studio, "dav", options, ["work=/dav"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    obscured = subprocess.run(
        [rclone_binary(), "obscure", password], capture_output=True, text=True, check=True
    ).stdout.strip()
    _assert_no_secret(logs, [password], {"sitesync"})  # rclone's own lines come through sitesync's logger
    text = "\n".join(logs.lines)
    assert "rclone[dav]" in text, "rclone's own log reached the debug log"
    # obscuring is reversible (and not deterministic): no obscured form of a secret either
    from sitesync.redaction import _secrets  # the forms this process used

    assert not [s for s in _secrets if s in text] and obscured not in text


def test_no_secret_in_debug_logs_gdrive_and_dropbox(
    sqlite_studio: Studio, drive_server: Any, dropbox_server: Any
) -> None:
    key_json = drive_server.key_file.read_text()
    folder = drive_server.fake.make_folder("leak check", drive_server.fake.root)
    gdrive = {
        "provider": "gdrive",
        "credentials_json": key_json,
        "folder_id": folder,
        "endpoint": drive_server.url,
    }
    dropbox = {"provider": "dropbox", **dropbox_server.options()}
    with debug_logs() as logs:
        _sync_through(sqlite_studio, "drive", gdrive, ["work=/"])
        _sync_through(sqlite_studio, "dbx", dropbox, [f"work=/Projects leak {os.urandom(3).hex()}"])
    private_key = json.loads(key_json)["private_key"]
    _assert_no_secret(logs, [private_key, dropbox_server.token], {"googleapiclient", "dropbox", "urllib3"})


def test_secrets_of_a_wrapped_provider_are_masked(sqlite_studio: Studio) -> None:
    """``faulty`` holds another provider's options: their secrets are masked as that provider's."""
    inner = {"type": "webdav", "options": {"url": "http://127.0.0.1:9"}, "secrets": {"pass": SECRET}}
    sqlite_studio.client.add_site("wrapped", "faulty", ["work=/w"], {"inner": "rclone", "inner_options": inner})
    for args in (["site", "show", "wrapped", "--json"], ["settings", "show", "--json"], ["settings", "export"]):
        out = sqlite_studio.cli(*args, check=True).stdout
        assert SECRET not in out and "********" in out, args
