"""Transfer benchmark: sitesync against ``cp -r``, ``rsync -a`` and ``rclone copy`` on the same data
in the same run.

Every contender copies a data set's source folder into an empty target folder on the same file
system. Rounds alternate the contenders (A B C ... A B C ..., the starting contender rotating each
round) so a burst of load from elsewhere hits all of them alike; the first round is a warm-up that
also brings the source into the page cache, and is not counted. Targets are deleted and dirty pages
written out (``sync``) between runs, untimed.

sitesync's time is the wall time of one process (``sitesync_job.py``) that registers every folder
in place on the site ``studio`` (hashing every file, one representation per folder) and then runs
the engine until the local site holds a verified copy of everything, with the database updated:
read, hash, write to a temporary name, fsync, compare size and xxh3-128 with the catalog, rename.
The peers neither hash (except rclone, which compares checksums after each copy by default) nor
fsync; ``cp+fsync`` is cp followed by an fsync of every file it wrote, the durability sitesync gives;
``cp+sync`` is ``cp -r && sync`` (everything written out once, as sitesync's batched durability does
with ``syncfs``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import (
    RunResult,
    Stats,
    clear_dir,
    find_rclone,
    find_rsync,
    flush_dirty_pages,
    timed_run,
    tool_version,
    with_pythonpath,
)
from benchmarks.datasets import DataSet, ensure
from sitesync.identity.markers import is_marker_name

JOB = Path(__file__).with_name("sitesync_job.py")
SITESYNC = "sitesync"
BEFORE = "sitesync-before"  # --baseline: the same job with the code of another revision


@dataclass
class Contender:
    name: str
    command: str  # shown in the report
    run: Callable[[Path, Path], RunResult]  # (source, target) -> timings
    details: list[dict[str, float]] = field(default_factory=list)


@dataclass
class DataSetResult:
    dataset: DataSet
    times: dict[str, list[float]]  # wall seconds per counted round
    cpu: dict[str, list[float]]  # CPU seconds (user + system) per counted round
    warmup: dict[str, float]
    phases: dict[str, list[dict[str, float]]]  # sitesync's (and sitesync-before's) time per phase

    def stats(self, name: str) -> Stats:
        return Stats.of(self.times[name])

    def paired_ratios(self, peer: str) -> list[float]:
        """Per counted round: peer time / sitesync time (> 1: sitesync was faster)."""
        return [p / s for p, s in zip(self.times[peer], self.times[SITESYNC], strict=True) if s > 0]

    def to_json(self) -> dict[str, object]:
        return {
            "dataset": self.dataset.__dict__,
            "times": self.times,
            "cpu": self.cpu,
            "warmup": self.warmup,
            "phases": self.phases,
        }


def _sitesync(name: str, concurrency: int | None, code: Path | None = None, label: str = "") -> Contender:
    """sitesync as a contender; ``code``: the ``src`` folder of another version to run instead."""
    contender = Contender(name, "", lambda s, t: RunResult(0.0, 0.0, ""))
    extra = ["--concurrency", str(concurrency)] if concurrency else []
    contender.command = (
        "python benchmarks/sitesync_job.py --source SRC"
        + (f" --concurrency {concurrency}" if concurrency else "")
        + "  (publish in place on `studio`, then the engine syncs to the local site)"
        + (f"; {label}" if label else "")
    )
    base_env = with_pythonpath(dict(os.environ), code)

    def run(source: Path, target: Path) -> RunResult:
        home = target.parent / f"{target.name}-home"
        clear_dir(home)
        prepared = timed_run(
            [
                sys.executable,
                str(JOB),
                "--prepare",
                "--source",
                str(source),
                "--home",
                str(home),
                "--db",
                f"sqlite:///{home / 'state.db'}",
                "--local-root",
                str(target),
            ],
            env=base_env,
        )
        env = {**base_env, **json.loads(prepared.stdout.strip().splitlines()[-1])}
        flush_dirty_pages()
        result = timed_run([sys.executable, str(JOB), "--source", str(source), *extra], env=env)
        phases = json.loads(result.stdout.strip().splitlines()[-1])
        expected = sum(1 for _ in source.rglob("*") if _.is_file() and not is_marker_name(_.name))
        if phases.get("transferred") != expected:
            raise RuntimeError(f"{name} transferred {phases.get('transferred')} of {expected} files: {phases}")
        phases["wall_seconds"] = result.seconds
        contender.details.append(phases)
        clear_dir(home)
        return result

    contender.run = run
    return contender


def _command(name: str, shown: str, argv: Callable[[Path, Path], list[str]]) -> Contender:
    def run(source: Path, target: Path) -> RunResult:
        flush_dirty_pages()
        return timed_run(argv(source, target))

    return Contender(name, shown, run)


def contenders(
    concurrency: int | None = None, baseline: tuple[str, Path] | None = None
) -> tuple[list[Contender], dict[str, str]]:
    rsync = find_rsync()
    rclone = find_rclone()
    rclone_flags = ["--config", os.devnull, "-q"]
    before = []
    if baseline is not None:
        ref, code = baseline
        before = [_sitesync(BEFORE, concurrency, code, f"the code of {ref}")]
    peers = [
        _sitesync(SITESYNC, concurrency),
        *before,
        _command("cp", "cp -r SRC DST", lambda s, t: ["cp", "-r", str(s), str(t)]),
        # cp made durable like sitesync's copies: every file fsynced (coreutils `sync FILE...`)
        _command(
            "cp+fsync",
            "cp -r SRC DST && find DST -type f -exec sync -- {} +",
            lambda s, t: ["sh", "-c", 'cp -r "$0" "$1" && find "$1" -type f -exec sync -- {} +', str(s), str(t)],
        ),
        _command(
            "cp+sync", "cp -r SRC DST && sync", lambda s, t: ["sh", "-c", 'cp -r "$0" "$1" && sync', str(s), str(t)]
        ),
        _command("rsync", "rsync -a SRC/ DST/", lambda s, t: [rsync, "-a", f"{s}/", f"{t}/"]),
        _command("rclone", "rclone copy SRC DST", lambda s, t: [rclone, "copy", *rclone_flags, str(s), str(t)]),
        _command(
            "rclone-nocheck",
            "rclone copy --ignore-checksum SRC DST",
            lambda s, t: [rclone, "copy", "--ignore-checksum", *rclone_flags, str(s), str(t)],
        ),
    ]
    versions = {
        "cp": tool_version(["cp", "--version"]),
        "rsync": tool_version([rsync, "--version"]),
        "rclone": tool_version([rclone, "version"]),
    }
    return peers, versions


def _check_copy(source: Path, target: Path, dataset: DataSet, name: str) -> None:
    """A contender that 'won' by copying nothing must not count: check the number of files and bytes."""
    files = [p for p in target.rglob("*") if p.is_file() and not is_marker_name(p.name)]  # not the site marker
    size = sum(p.stat().st_size for p in files)
    if len(files) != dataset.count or size != dataset.total_bytes:
        raise RuntimeError(
            f"{name} left {len(files)} files ({size} bytes) in {target}; expected {dataset.count} ({dataset.total_bytes})"
        )


def run_dataset(
    dataset: DataSet,
    workdir: Path,
    runs: int,
    peers: list[Contender],
    log: Callable[[str], None] = print,
) -> DataSetResult:
    source = ensure(dataset, workdir)
    out = workdir / "out" / dataset.name
    out.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {p.name: [] for p in peers}
    cpu: dict[str, list[float]] = {p.name: [] for p in peers}
    warmup: dict[str, float] = {}
    for p in peers:
        p.details.clear()
    for round_no in range(runs + 1):
        order = peers[round_no % len(peers) :] + peers[: round_no % len(peers)]
        for p in order:
            target = out / p.name
            clear_dir(target)
            result = p.run(source, target)
            root = target / "work" if p.name in (SITESYNC, BEFORE) else target
            _check_copy(source, root, dataset, p.name)
            clear_dir(target)
            if round_no == 0:
                warmup[p.name] = result.seconds
            else:
                times[p.name].append(result.seconds)
                cpu[p.name].append(result.cpu_seconds)
        label = "warm-up" if round_no == 0 else f"round {round_no}/{runs}"
        last = {p.name: (warmup if round_no == 0 else {k: v[-1] for k, v in times.items()})[p.name] for p in peers}
        log(f"  {dataset.name} {label}: " + ", ".join(f"{k} {v:.2f}s" for k, v in last.items()))
    phases = {p.name: p.details[1:] for p in peers if p.name in (SITESYNC, BEFORE)}
    shutil.rmtree(out, ignore_errors=True)
    return DataSetResult(dataset, times, cpu, warmup, phases)


def run(
    datasets: list[DataSet],
    workdir: Path,
    runs: int,
    concurrency: int | None = None,
    log: Callable[[str], None] = print,
    baseline: tuple[str, Path] | None = None,
) -> dict[str, object]:
    peers, versions = contenders(concurrency, baseline)
    results = []
    started = time.time()
    for ds in datasets:
        log(f"transfer: {ds.name} ({ds.describe()}), {runs} counted rounds after a warm-up")
        results.append(run_dataset(ds, workdir, runs, peers, log))
    return {
        "versions": versions,
        "commands": {p.name: p.command for p in peers},
        "results": results,
        "seconds": time.time() - started,
    }
