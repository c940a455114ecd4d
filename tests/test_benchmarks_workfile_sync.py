"""The workfile sync benchmark in its ``--quick`` mode (2 saves, a 32 MiB scene), through
``benchmarks.run``: two real ``sitesync worker`` processes over a throwaway PostgreSQL database;
every save arrives byte-identical on the other workstation and every row is reported. Speed is
never asserted here (DESIGN §10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PG = os.environ.get("SITESYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def test_quick_workfile_sync_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--only",
            "workfile-sync",
            "--pg-url",
            PG,
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
            "--results-file",
            str(tmp_path / "RESULTS.md"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = (out / "report.md").read_text()
    assert "### Workfile sync between two workstations with running workers" in report
    for row in ("| save on A -> byte-identical on B", "| same scene, 4 KiB changed", "| `rsync --no-whole-file"):
        assert row in report
    data = json.loads((out / "results.json").read_text())["workfile_sync"]
    assert len(data["latency_s"]) == 2 and data["big_bytes"] == 32 * 1024 * 1024
    assert data["big_moved_bytes"] >= data["big_bytes"]  # whole files: at least B's download
    assert 0 < data["rsync"]["literal"] < data["big_bytes"]
    assert not (tmp_path / "RESULTS.md").exists()
