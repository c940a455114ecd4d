"""Worker memory: the peak resident set size of ``sitesync sync --once`` (the real command, its own
process) while it moves many small files between two local_drive sites.

The peak is exact, not polled: a small wrapper process runs the command and reads
``getrusage(RUSAGE_CHILDREN).ru_maxrss`` after it ends (the largest RSS the child ever had).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.datasets import DataSet, ensure
from benchmarks.sitesync_job import prepare

JOB = Path(__file__).with_name("sitesync_job.py")
_WRAPPER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.run(sys.argv[2:], capture_output=True, text=True)
with open(sys.argv[1], "w") as fh:
    json.dump({"rc": proc.returncode, "stdout": proc.stdout[-4000:], "stderr": proc.stderr[-4000:],
               "seconds": time.perf_counter() - started,
               "maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}, fh)
"""


def peak_rss(cmd: list[str], env: dict[str, str], scratch: Path) -> dict[str, Any]:
    """Run ``cmd``; return its exit code, output, wall seconds and peak RSS in MB (10^6 bytes)."""
    result_file = scratch / "rusage.json"
    subprocess.run([sys.executable, "-c", _WRAPPER, str(result_file), *cmd], env=env, check=True)
    data = json.loads(result_file.read_text())
    result_file.unlink()
    if data["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({data['rc']}):\n{data['stdout']}\n{data['stderr']}")
    data["peak_rss_mb"] = data["maxrss_kib"] * 1024 / 1e6  # Linux reports KiB
    return data


def run(workdir: Path, files: int, size: int, folders: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    dataset = DataSet("memory", files, size, folders)
    log(f"memory: {dataset.describe()}")
    started = time.time()
    source = ensure(dataset, workdir)
    base = workdir / "out" / "memory"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    home = base / "home"
    env = {**os.environ, **prepare(home, f"sqlite:///{home / 'state.db'}", source, base / "local")}
    try:
        pub = peak_rss([sys.executable, str(JOB), "--source", str(source), "--publish-only"], env, base)
        log(f"  published {files:,} files in {pub['seconds']:.1f} s (peak RSS {pub['peak_rss_mb']:.0f} MB)")
        sync = peak_rss([sys.executable, "-m", "sitesync", "sync", "--once", "--json"], env, base)
        report = json.loads(sync["stdout"])
        if report["transferred"] != files:
            raise RuntimeError(f"sitesync sync --once transferred {report['transferred']} of {files} files: {report}")
        log(f"  synced in {sync['seconds']:.1f} s, peak RSS {sync['peak_rss_mb']:.0f} MB")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {
        "files": files,
        "file_size": size,
        "representations": folders,
        "peak_rss_mb": sync["peak_rss_mb"],
        "seconds": sync["seconds"],
        "publish_peak_rss_mb": pub["peak_rss_mb"],
        "publish_seconds": pub["seconds"],
        "total_seconds": time.time() - started,
    }
