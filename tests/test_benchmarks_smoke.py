"""The benchmark command in its ``--quick`` mode, end to end: every part runs (transfers against cp,
rsync and rclone; the state store on SQLite and PostgreSQL; worker memory) and the report is written.
Speed is never asserted here (DESIGN §10): only that it finishes, checks its copies and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_ADMIN

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_benchmark_runs_every_part_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    results_file = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
            "--results-file",
            str(results_file),
            "--pg-url",
            PG_ADMIN,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = (out / "report.md").read_text()
    for heading in ("### Targets", "### Transfers", "#### small", "#### large", "### State store at scale"):
        assert heading in report, f"{heading!r} missing from the report"
    for name in (
        "| sitesync |",
        "| cp |",
        "| cp+fsync |",
        "| cp+sync |",
        "| rsync |",
        "| rclone |",
        "| rclone-nocheck |",
    ):
        assert name in report
    assert "#### SQLite:" in report and "#### PostgreSQL:" in report and "skipped" not in report
    assert "peak RSS" in report
    data = json.loads((out / "results.json").read_text())
    small = next(r for r in data["transfer"]["results"] if r["dataset"]["name"] == "small")
    assert set(small["times"]) == {"sitesync", "cp", "cp+fsync", "cp+sync", "rsync", "rclone", "rclone-nocheck"}
    assert all(len(v) == 1 for v in small["times"].values()), "--quick counts one round after the warm-up"
    claim = next(o for o in data["scale"]["databases"][1]["operations"] if o["name"].startswith("claim next 1,000"))
    assert len(claim["ms"]) == 3
    assert data["memory"]["files"] == 500 and data["memory"]["peak_rss_mb"] > 0
    assert not results_file.exists(), "a --quick run must not replace the published results"
    assert not (tmp_path / "work" / "out").exists() or not any((tmp_path / "work" / "out").rglob("*.bin"))
