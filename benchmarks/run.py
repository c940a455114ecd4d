"""The one benchmark command (see benchmarks/README.md).

    .venv/bin/python -m benchmarks.run [--quick] [--only transfer,state,memory,startup,workfiles] [--sizes small,medium,large]
                                        [--dataset NAME=COUNTxSIZE[/FOLDERS]] [--runs N] [--workdir DIR]

Writes ``results.json`` and ``report.md`` to ``--out`` and, for a full run (not ``--quick``), replaces
the generated section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from benchmarks import memory, report, scale, startup, transfer, workfile_scan, workfile_sync
from benchmarks.common import REPO, baseline_source, machine_info, parse_size
from benchmarks.datasets import DEFAULT_SPECS, QUICK_SPECS, DataSet

PARTS = ("transfer", "state", "memory", "startup", "workfiles", "workfile-sync")
# startup (benchmarks/startup.py), workfiles (benchmarks/workfile_scan.py) and workfile-sync
# (benchmarks/workfile_sync.py) run when asked for: --only ...,startup,workfiles,workfile-sync
DEFAULT_PARTS = ("transfer", "state", "memory")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny data everywhere: a smoke run of every part")
    p.add_argument(
        "--only",
        default=",".join(DEFAULT_PARTS),
        help="comma-separated parts: transfer,state,memory,startup,workfiles,workfile-sync",
    )
    p.add_argument("--sizes", default=None, help="data sets to time, comma-separated (default: all)")
    p.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="NAME=COUNTxSIZE[/FOLDERS]",
        help="add or redefine a data set, e.g. small=10000x4KiB/100",
    )
    p.add_argument("--runs", type=int, default=None, help="counted rounds per data set (default 5; quick: 1)")
    p.add_argument("--concurrency", type=int, default=None, help="sitesync's parallel transfers (default: its own)")
    p.add_argument(
        "--baseline",
        metavar="GIT_REF",
        default=None,
        help="also time the code of this git revision (row sitesync-before): before/after in one run",
    )
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data", help="where data sets and copies go")
    p.add_argument(
        "--out", type=Path, default=None, help="where results.json and report.md go (default WORKDIR/results)"
    )
    p.add_argument("--results-file", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    p.add_argument("--no-results-file", action="store_true", help="do not touch RESULTS.md")
    p.add_argument("--pg-url", default=os.environ.get("SITESYNC_BENCH_PG", DEFAULT_PG), help="PostgreSQL admin URL")
    p.add_argument("--scale-representations", type=int, default=None, help="default 100000 (quick: 2000)")
    p.add_argument("--scale-files", type=int, default=5, help="files per representation; replicas = 2 x files")
    p.add_argument(
        "--scale-databases", default="sqlite,postgresql", help="state store databases: sqlite, postgresql or both"
    )
    p.add_argument("--scale-repeat", type=int, default=None, help="timed repetitions per query (default 20; quick: 3)")
    p.add_argument("--memory-files", type=int, default=None, help="default 100000 (quick: 500)")
    p.add_argument("--memory-size", default="4KiB")
    args = p.parse_args(argv)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = set(args.only) - set(PARTS)
    if unknown:
        p.error(f"--only: unknown part(s) {', '.join(sorted(unknown))}; use {', '.join(PARTS)}")
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    return args


def datasets(args: argparse.Namespace) -> list[DataSet]:
    specs = dict(QUICK_SPECS if args.quick else DEFAULT_SPECS)
    for item in args.dataset:
        name, sep, spec = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--dataset {item!r}: use NAME=COUNTxSIZE[/FOLDERS]")
        specs[name] = spec
    names = [n.strip() for n in args.sizes.split(",")] if args.sizes else list(specs)
    missing = [n for n in names if n not in specs]
    if missing:
        raise SystemExit(f"--sizes: unknown data set(s) {', '.join(missing)}; known: {', '.join(specs)}")
    try:
        return [DataSet.parse(n, specs[n]) for n in names]
    except ValueError as exc:
        raise SystemExit(str(exc)) from None


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_json"):
            return _jsonable(value.to_json())
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _revision() -> str:
    """This checkout's commit (and whether it has uncommitted changes)."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True, text=True
        )
    except OSError:
        return "?"
    if sha.returncode != 0:
        return "?"
    return sha.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks.run" + ("" if argv is None and len(sys.argv) <= 1 else " ")
    command += shlex.join(sys.argv[1:] if argv is None else argv)
    command = command.strip()
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    out_dir = (args.out or workdir / "results").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(message, flush=True)

    from sitesync import __version__ as sitesync_version

    started = time.time()
    baseline = (args.baseline, baseline_source(args.baseline, workdir)) if args.baseline else None
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(workdir),
        "sitesync_version": sitesync_version,
        "revision": _revision(),
        "baseline": args.baseline,
        "quick": args.quick,
    }
    if "transfer" in args.only:
        runs = args.runs or (1 if args.quick else 5)
        data["transfer"] = transfer.run(datasets(args), workdir, runs, args.concurrency, log, baseline)
    if "state" in args.only:
        reps = args.scale_representations or (2000 if args.quick else 100_000)
        repeat = args.scale_repeat or (3 if args.quick else 20)
        publish = (2, 20, 4096) if args.quick else (20, 100, 4096)
        databases = tuple(x.strip() for x in args.scale_databases.split(",") if x.strip())
        data["scale"] = scale.run(
            workdir, args.pg_url, reps, args.scale_files, repeat, publish, log, baseline, databases
        )
    if "memory" in args.only:
        files = args.memory_files or (500 if args.quick else 100_000)
        data["memory"] = memory.run(workdir, files, parse_size(args.memory_size), max(1, files // 100), log)
    if "startup" in args.only:
        runs = args.runs or (1 if args.quick else 5)
        files = 200 if args.quick else 10_000
        data["startup"] = startup.run(workdir / "startup", args.pg_url, runs, files, baseline, log)
    if "workfiles" in args.only:
        runs = args.runs or (1 if args.quick else 5)
        files = 1000 if args.quick else 100_000
        data["workfiles"] = workfile_scan.run(workdir / "workfile-scan", files, runs, log)
    if "workfile-sync" in args.only:
        saves = args.runs or (2 if args.quick else 5)
        big = parse_size("32MiB" if args.quick else "2GiB")
        data["workfile_sync"] = workfile_sync.run(workdir / "workfile-sync", args.pg_url, saves, big, log)
    data["seconds"] = time.time() - started

    markdown = report.render(data, command)
    if "startup" in data:
        markdown += "\n" + startup.render(data["startup"], command, heading="###")
    if "workfiles" in data:
        markdown += "\n" + workfile_scan.render(data["workfiles"], command, heading="###")
    if "workfile_sync" in data:
        markdown += "\n" + workfile_sync.render(data["workfile_sync"], command, heading="###")
    (out_dir / "report.md").write_text(markdown)
    (out_dir / "results.json").write_text(json.dumps(_jsonable(data), indent=2))
    log("")
    log(markdown)
    if not args.quick and not args.no_results_file:
        report.update_results_file(args.results_file, markdown)
        log(f"updated {args.results_file}")
    log(f"wrote {out_dir / 'report.md'} and {out_dir / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
