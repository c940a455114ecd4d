"""The workfile scan benchmark in its ``--quick`` mode (1,000 files), through ``benchmarks.run``:
it generates its tree, checks that the unchanged scan reports nothing and reads nothing, and
reports every row. Speed is never asserted here (DESIGN §10)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_workfile_scan_benchmark_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--only",
            "workfiles",
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
        timeout=300,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = (out / "report.md").read_text()
    assert "### Workfile scan of an unchanged work area" in report
    for row in ("| scan |", "| scan (whole process) |", "| rsync -a --dry-run |", "| find -type f |"):
        assert row in report
    data = json.loads((out / "results.json").read_text())["workfiles"]
    assert data["files"] == 1000 and data["tracked"] == 1000
    assert all(len(v) == 1 for v in data["wall"].values())
    assert not (tmp_path / "RESULTS.md").exists()
