"""The start-up and republish benchmark in its ``--quick`` mode, end to end: every command runs as a
whole process on SQLite and PostgreSQL, against this checkout's own revision as the baseline, and
the report is written. Speed is never asserted here (DESIGN §10): only that it runs and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_startup_benchmark_times_every_command_and_the_republish(tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = ["--quick", "--baseline", "HEAD", "--pg-url", PG_ADMIN, "--republish-files", "50"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.startup", *options, "--workdir", str(tmp_path / "work"), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "## Start-up and republish" in proc.stdout
    data = json.loads((out / "startup.json").read_text())
    assert "skipped" not in data
    timed = {(r["variant"], r["database"], r["command"]) for r in data["commands"]}
    for variant in ("before", "after"):
        assert (variant, "sqlite", "sitesync --help") in timed
        for db in ("sqlite", "postgresql"):
            assert (variant, db, "sitesync status P") in timed
            assert (variant, db, "sitesync sync --once") in timed
    assert all(len(r["wall"]) == 1 and len(r["cpu"]) == 1 and r["wall"][0] > 0 for r in data["commands"])
    assert {(r["variant"], r["database"]) for r in data["republish"]} == {
        (v, db) for v in ("before", "after") for db in ("sqlite", "postgresql")
    }
    assert all(r["files"] == 50 and r["changed"][0] > 0 for r in data["republish"])
    assert not list((tmp_path / "work").glob("run-*")), "the run's installations are left behind"
