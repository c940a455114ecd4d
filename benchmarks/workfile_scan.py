"""Workfile change detection: scanning an unchanged work area versus ``rsync -a --dry-run`` (issue 15).

    .venv/bin/python -m benchmarks.workfile_scan [--quick] [--files 100000] [--runs 5] [--workdir DIR]

A project folder of ``--files`` small files (100,000; quick: 1,000) under ``work/`` folders
(``seqNN/shNNN/work/TASK/...``, plus ignored DCC noise: ``.mayaSwatches/``, ``*.swp``) is generated
once into the work folder (reused when it is already there with the same count), and an identical
copy of it beside it (``cp -a``). A first scan builds the facts (cold: every file hashed). Then,
alternating within each round so they see the same load, median over ``--runs`` rounds:

* ``scan``: ``scan_work_area`` of the unchanged tree with the facts of the first scan, in this
  process (one stat pass, no reads; asserted: nothing new, modified or deleted, no file read);
* ``scan (process)``: the same as a whole process (``python -c`` that imports sitesync, loads the
  facts from a pickle and scans), start-up included;
* ``rsync -a --dry-run``: ``rsync -a --dry-run SRC/ DST/`` with DST the identical copy (both trees stat'ed,
  nothing to transfer);
* ``find -type f``: ``find SRC -type f -printf .`` (a walk with next to no stat), a floor for any walk.

Wall time and CPU time (user + system; what load from other processes inflates far less) of each.
Prints a markdown section (median, min, max and the ratios to rsync) with the machine's load;
``--json`` writes the numbers. ``python -m benchmarks.run --only workfiles`` runs it too.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine_info

TASKS = ("anim", "layout", "lighting", "fx")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.workfile_scan", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 files, one counted round: a smoke run")
    p.add_argument("--files", type=int, default=None, help="workfiles in the tree (default 100000; quick: 1000)")
    p.add_argument("--runs", type=int, default=None, help="counted rounds (default 5; quick: 1)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/sitesync-bench-workfile-scan"))
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    args.files = args.files or (1000 if args.quick else 100_000)
    args.runs = args.runs or (1 if args.quick else 5)
    if args.files < 1 or args.runs < 1:
        p.error("--files and --runs must be at least 1")
    return args


def generate(project: Path, files: int) -> None:
    """``files`` small workfiles under ``work/`` folders, 250 per task folder, plus a little DCC
    noise the default ignore list skips."""
    per_folder = 250
    folders = max(1, (files + per_folder - 1) // per_folder)
    made = 0
    payload = b"//Maya ASCII 2024 scene\n" * 4
    for f in range(folders):
        seq, shot, task = f // 40, f // 4, TASKS[f % len(TASKS)]
        folder = project / f"seq{seq:02d}" / f"sh{shot:03d}" / "work" / task
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".mayaSwatches").mkdir(exist_ok=True)
        (folder / ".mayaSwatches" / "swatch.ma.swatch").write_bytes(b"s")
        count = min(per_folder, files - made)
        for i in range(count):
            fd = os.open(folder / f"sh{shot:03d}_{task}_v{i:03d}.ma", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, payload + str(i).encode())
            os.close(fd)
        made += count
        (folder / f"sh{shot:03d}_{task}_v000.ma.swp").write_bytes(b"x")
        (project / f"seq{seq:02d}" / f"sh{shot:03d}" / "publish").mkdir(exist_ok=True)
    (project / ".generated").write_text(str(files))


def ensure_tree(workdir: Path, files: int, log: Callable[[str], None]) -> tuple[Path, Path]:
    src, dst = workdir / "src" / "proj", workdir / "dst" / "proj"
    marker = src / ".generated"
    if marker.exists() and marker.read_text() == str(files) and (dst / ".generated").exists():
        log(f"reusing the tree of {files} files in {workdir}")
        return src, dst
    shutil.rmtree(workdir, ignore_errors=True)
    started = time.perf_counter()
    generate(src, files)
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(src), str(dst)], check=True)
    log(f"generated {files} files and their copy in {time.perf_counter() - started:.1f} s")
    return src, dst


def _scan(src: Path, previous: dict) -> tuple[float, float, object]:
    from sitesync.providers.local_drive import LocalDriveProvider
    from sitesync.workfiles.scan import scan_work_area
    from sitesync.workfiles.select import WorkAreaSelector

    provider = LocalDriveProvider.from_options("bench", {}, {"work": str(src.parent)})
    cpu, started = time.process_time(), time.perf_counter()
    result = scan_work_area(provider, str(src), WorkAreaSelector.default(), previous, settle_seconds=0)
    return time.perf_counter() - started, time.process_time() - cpu, result


SCAN_PROCESS = """
import pickle, sys
from sitesync.providers.local_drive import LocalDriveProvider
from sitesync.workfiles.scan import scan_work_area
from sitesync.workfiles.select import WorkAreaSelector
src, facts = sys.argv[1], sys.argv[2]
with open(facts, "rb") as fh:
    previous = pickle.load(fh)
provider = LocalDriveProvider.from_options("bench", {}, {"work": src.rsplit("/", 1)[0]})
r = scan_work_area(provider, src, WorkAreaSelector.default(), previous, settle_seconds=0)
assert not r.changed and r.hashed == 0 and r.unchanged == len(previous), r
"""


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(workdir: Path, files: int, runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Generate (or reuse) the tree, scan it cold, then time the unchanged scans and their peers."""
    src, dst = ensure_tree(workdir, files, log)
    took, _cpu, first = _scan(src, {})
    facts = first.facts  # type: ignore[attr-defined]
    if len(facts) != files:
        raise SystemExit(f"first scan found {len(facts)} workfiles, expected {files}")
    log(f"cold scan (every file hashed): {took:.2f} s for {len(facts)} files")
    facts_file = workdir / "facts.pickle"
    facts_file.write_bytes(pickle.dumps(facts))
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))

    def scan_in_process() -> tuple[float, float]:
        wall, cpu, result = _scan(src, facts)
        assert not result.changed and result.hashed == 0 and result.unchanged == len(facts), result  # type: ignore[attr-defined]
        return wall, cpu

    runners: dict[str, Callable[[], tuple[float, float]]] = {
        "scan": scan_in_process,
        "scan (whole process)": lambda: _timed([sys.executable, "-c", SCAN_PROCESS, str(src), str(facts_file)], env),
        "rsync -a --dry-run": lambda: _timed(["rsync", "-a", "--dry-run", f"{src}/", f"{dst}/"]),
        "find -type f": lambda: _timed(["find", str(src), "-type", "f", "-printf", "."]),
    }
    for fn in runners.values():  # warm-up: page cache and dentries for everyone
        fn()
    wall: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    loads = []
    for _ in range(runs):
        loads.append(os.getloadavg()[0])
        for name, fn in runners.items():
            w, c = fn()
            wall[name].append(w)
            cpu[name].append(c)
    return {
        "files": files,
        "tracked": len(facts),
        "runs": runs,
        "cold_scan_s": took,
        "wall": wall,
        "cpu": cpu,
        "load": [min(loads), max(loads)],
        "machine": machine_info(workdir),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def render(data: dict[str, Any], command: str, heading: str = "##") -> str:
    """A markdown section of the results (``benchmarks/RESULTS.md``)."""
    peer = "rsync -a --dry-run"
    wall_peer = statistics.median(data["wall"][peer])
    cpu_peer = statistics.median(data["cpu"][peer])
    lines = [
        f"{heading} Workfile scan of an unchanged work area (`benchmarks/workfile_scan.py`, issue 15)",
        "",
        f"{data['date']}, `{command}`: {data['files']:,} workfiles under `work/` folders "
        f"({data['tracked']:,} tracked), median of {data['runs']} alternating rounds after a warm-up; "
        f"{data['machine']['cpu']}, {data['machine']['disk']}; load average during the rounds "
        f"{data['load'][0]:.1f}-{data['load'][1]:.1f}. The first (cold) scan, hashing every file: "
        f"{data['cold_scan_s']:.1f} s.",
        "",
        "| what | wall median s | min | max | vs rsync | CPU median s | vs rsync |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, values in data["wall"].items():
        med = statistics.median(values)
        cpu = statistics.median(data["cpu"][name])
        lines.append(
            f"| {name} | {med:.3f} | {min(values):.3f} | {max(values):.3f} | {med / wall_peer:.2f}x "
            f"| {cpu:.3f} | {cpu / cpu_peer:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(f"[workfile_scan] {message}", file=sys.stderr, flush=True)

    data = run(args.workdir, args.files, args.runs, log)
    command = "python -m benchmarks.workfile_scan " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(render(data, command.strip()))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
