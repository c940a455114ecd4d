"""Configured secrets never appear in CLI output, logs, settings exports (unless asked for with
--include-secrets), the event history, or error messages."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import Studio, db_snapshot

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
        time.sleep(3)
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
