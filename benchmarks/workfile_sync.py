"""Workfile sync with running workers: save-to-arrival latency and a big scene saved again (issue 15).

    .venv/bin/python -m benchmarks.workfile_sync [--quick] [--saves 5] [--big 2GiB] [--workdir DIR] [--pg URL]

Two workstations (``ws-a``, ``ws-b``: separate ``SITESYNC_HOME``s and local roots) share one catalog
in a throwaway PostgreSQL database, with a local folder as the studio storage (the project's remote
site). A ``sitesync worker`` runs for each, watching its work area (``workfiles/loop.py``).

* **latency**: ``--saves`` saves (default 5; quick: 2) of a small scene on A, written the way a DCC
  does (a new file content, the modification time *now*). For each: the time from the end of the
  write until B's copy is byte-identical (polled every 20 ms). The scanner takes a file only once it
  is older than its settle time (2 s), which is part of every number.
* **big scene**: a ``--big`` scene (2 GiB; quick: 32 MiB, random bytes) is synced first, then 4 KiB in
  its middle are changed in place on A. Time until B holds the new content (hash compared) and the
  bytes sitesync moved for it (``workfile_transfer`` events: the upload to the studio, the copy of
  the new version into the versions area, B's download). Compared with ``rsync
  --no-whole-file --stats`` of the same change between two local copies (its delta algorithm;
  "Literal data" is what it would send).

Prints a markdown section; ``--json`` writes the numbers. ``python -m benchmarks.run --only
workfile-sync`` runs it too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, machine_info, parse_size
from benchmarks.startup import Postgres, pg_problem

PROJECT = "show"
SCENE = "sh010/work/anim/sh010_anim_v001.ma"
BIG = "sh010/work/light/sh010_light_v001.ma"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
Log = Callable[[str], None]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.workfile_sync", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 saves, a 32 MiB scene: a smoke run")
    p.add_argument("--saves", type=int, default=None, help="timed saves of the small scene (default 5; quick: 2)")
    p.add_argument("--big", default=None, help="size of the big scene (default 2GiB; quick: 32MiB)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/sitesync-bench-workfile-sync"))
    p.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL admin URL (a throwaway database is made there)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = p.parse_args(argv)
    args.saves = args.saves or (2 if args.quick else 5)
    args.big = parse_size(args.big or ("32MiB" if args.quick else "2GiB"))
    if args.saves < 1 or args.big < 1024 * 1024:
        p.error("--saves must be at least 1 and --big at least 1MiB")
    return args


class Machine:
    def __init__(self, name: str, workdir: Path, db: str) -> None:
        self.name = name
        self.home = workdir / f"home-{name}"
        self.root = workdir / name
        self.db = db
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SITESYNC_")}
        env.update({"SITESYNC_HOME": str(self.home), "SITESYNC_DB": self.db, "SITESYNC_SITE_ID": self.name})
        env["PYTHONPATH"] = str(REPO / "src")
        return env

    def path(self, rel: str) -> Path:
        return self.root / "work" / PROJECT / rel

    def cli(self, *args: str) -> None:
        proc = subprocess.run([sys.executable, "-m", "sitesync", *args], env=self.env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"sitesync {shlex.join(args)} failed on {self.name}: {proc.stderr[-2000:]}")

    def start(self, log_file: Path) -> None:
        with log_file.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sitesync", "worker", "--log-level", "info"],
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _wait(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Poll until ``predicate``; returns the seconds it took (SystemExit after ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _digest(path: Path) -> str | None:
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    try:
        with path.open("rb") as f:
            while chunk := f.read(8 << 20):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


def _save(path: Path, data: bytes) -> float:
    """A DCC-like save (write the whole file, modification time now); returns when it ended."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(data)
    return time.monotonic()


def _write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n


def _change_middle(path: Path, size: int) -> float:
    with path.open("r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(4096))
    return time.monotonic()


@contextlib.contextmanager
def _setup(workdir: Path, pg: str, log: Log) -> Iterator[tuple[Machine, Machine, Path, str]]:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    problem = pg_problem(pg)
    if problem:
        raise SystemExit(problem)
    db = Postgres(pg)
    try:
        url = db.url.replace("postgresql://", "postgresql+psycopg://")
        studio = workdir / "studio"
        studio.mkdir()
        a, b = Machine("ws-a", workdir, url), Machine("ws-b", workdir, url)
        a.cli("init")
        a.cli("project", "create", PROJECT, "--root", f"work={studio}")
        for key, value in (
            ("active_site", "local"),
            ("remote_site", "studio"),
            ("retry_backoff", "0"),
            ("workfiles.enabled", "true"),
        ):
            a.cli("settings", "set", key, value, "--project", PROJECT)
        for m in (a, b):
            m.cli("settings", "set", "local_root", str(m.root), "--local")
        log(f"catalog: PostgreSQL database {db.name}; studio storage {studio}")
        try:
            yield a, b, studio, db.name
        finally:
            a.stop()
            b.stop()
    finally:
        db.drop()


def _moved_bytes(db_url: str, after_id: int) -> tuple[int, int, list[str]]:
    """(bytes, transfers, messages) of the workfile transfers recorded after event ``after_id``."""
    from sitesync.state.store import StateStore

    store = StateStore(db_url)
    try:
        rows = store.events_page(kinds=["workfile_transfer"], after_id=after_id, limit=1000)
    finally:
        store.close()
    return sum(r.bytes or 0 for r in rows), len(rows), [f"{r.message} ({r.bytes or 0:,} B)" for r in rows]


def _last_event_id(db_url: str) -> int:
    from sitesync.state.store import StateStore

    store = StateStore(db_url)
    try:
        rows = store.events_page(limit=1)
    finally:
        store.close()
    return rows[0].id if rows else 0


def _rsync_delta(workdir: Path, old: Path, new: Path) -> dict[str, Any]:
    """``rsync --no-whole-file`` of the changed file onto a local copy of the old one."""
    dst = workdir / "rsync-dst" / new.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(old, dst)
    cmd = ["rsync", "--no-whole-file", "--stats", str(new), str(dst)]
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    took = time.monotonic() - start
    literal = re.search(r"Literal data: ([\d,]+)", proc.stdout)
    matched = re.search(r"Matched data: ([\d,]+)", proc.stdout)
    sent = re.search(r"Total bytes sent: ([\d,]+)", proc.stdout)
    assert _digest(dst) == _digest(new)
    dst.unlink()

    def num(m: re.Match[str] | None) -> int:
        return int(m.group(1).replace(",", "")) if m else -1

    return {
        "command": shlex.join(["rsync", "--no-whole-file", "--stats", "NEW", "OLD_COPY"]),
        "seconds": took,
        "literal": num(literal),
        "matched": num(matched),
        "sent": num(sent),
    }


def run(workdir: Path, pg: str, saves: int, big: int, log: Log) -> dict[str, Any]:
    loads = [os.getloadavg()[0]]
    with _setup(workdir, pg, log) as (a, b, _studio, _dbname):
        db_url = a.db
        _save(a.path(SCENE), b"scene v0\n")
        a.start(workdir / "worker-a.log")
        b.start(workdir / "worker-b.log")
        first = _wait(lambda: _read(b.path(SCENE)) == b"scene v0\n", 300, "the first scene on B")
        log(f"workers up; first scene on B after {first:.1f} s (start-up and first full passes included)")
        latencies = []
        for i in range(saves):
            data = f"scene v{i + 1}\n".encode() + os.urandom(64 * 1024)
            saved = _save(a.path(SCENE), data)
            _wait(lambda data=data: _read(b.path(SCENE)) == data, 300, f"save {i + 1} on B")  # type: ignore[misc]
            latencies.append(time.monotonic() - saved)
            loads.append(os.getloadavg()[0])
            log(f"save {i + 1}: on B after {latencies[-1]:.2f} s")

        log(f"writing the big scene ({big:,} bytes)")
        _write_random(a.path(BIG), big)
        big_hash = _digest(a.path(BIG))

        def big_on_b() -> bool:
            try:
                if b.path(BIG).stat().st_size != big:
                    return False
            except OSError:
                return False
            return _digest(b.path(BIG)) == big_hash

        first_big = _wait(big_on_b, 3600, "the big scene on B", 0.2)
        log(f"big scene on B after {first_big:.1f} s")
        old_copy = workdir / "big-old"
        shutil.copyfile(a.path(BIG), old_copy)  # for rsync, and to tell when B changes
        b_before = b.path(BIG).stat().st_ino
        after = _last_event_id(db_url)
        changed = _change_middle(a.path(BIG), big)
        want = _digest(a.path(BIG))

        def arrived() -> bool:
            try:
                if b.path(BIG).stat().st_ino == b_before:
                    return False
            except OSError:
                return False
            return _digest(b.path(BIG)) == want

        _wait(arrived, 3600, "the changed big scene on B", 0.2)
        big_latency = time.monotonic() - changed
        loads.append(os.getloadavg()[0])
        time.sleep(1.0)  # let the last event rows land (bytes are counted, not timed)
        moved, transfers, messages = _moved_bytes(db_url, after)
        log(f"changed big scene on B after {big_latency:.1f} s; sitesync moved {moved:,} bytes in {transfers} copies")
        rsync = _rsync_delta(workdir, old_copy, a.path(BIG))
        log(f"rsync --no-whole-file: {rsync['seconds']:.1f} s, literal data {rsync['literal']:,} bytes")
        old_copy.unlink()
    loads.append(os.getloadavg()[0])
    with contextlib.suppress(OSError):
        shutil.rmtree(workdir)
    return {
        "saves": saves,
        "latency_s": latencies,
        "first_s": first,
        "big_bytes": big,
        "big_first_s": first_big,
        "big_latency_s": big_latency,
        "big_moved_bytes": moved,
        "big_transfers": transfers,
        "big_transfer_messages": messages,
        "rsync": rsync,
        "load": [min(loads), max(loads)],
        "machine": machine_info(workdir.parent),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def _size(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def render(data: dict[str, Any], command: str, heading: str = "##") -> str:
    """A markdown section of the results (``benchmarks/RESULTS.md``)."""
    lat = data["latency_s"]
    r = data["rsync"]
    return "\n".join(
        [
            f"{heading} Workfile sync between two workstations with running workers (`benchmarks/workfile_sync.py`, issue 15)",
            "",
            f"{data['date']}, `{command}`: two `sitesync worker` processes (ws-a, ws-b) over one PostgreSQL "
            f"catalog, local folders for both work areas and the studio storage; {data['machine']['cpu']}, "
            f"{data['machine']['disk']}; load average {data['load'][0]:.1f}-{data['load'][1]:.1f}.",
            "",
            "| what | result |",
            "|---|---|",
            f"| save on A -> byte-identical on B, median of {len(lat)} saves (64 KiB scene) | "
            f"**{statistics.median(lat):.2f} s** (min {min(lat):.2f}, max {max(lat):.2f}; includes the 2 s settle time) |",
            f"| {_size(data['big_bytes'])} scene, first sync A -> B | {data['big_first_s']:.1f} s |",
            f"| same scene, 4 KiB changed in place on A -> on B | {data['big_latency_s']:.1f} s |",
            f"| bytes sitesync moved for that change | {data['big_moved_bytes']:,} "
            f"({data['big_moved_bytes'] / data['big_bytes']:.2f}x the file, {data['big_transfers']} whole-file copies) |",
            f"| `{r['command']}` of the same change (local copies) | {r['seconds']:.1f} s, literal data "
            f"{r['literal']:,} bytes, matched {r['matched']:,} |",
            "",
            "sitesync copies whole files: the upload to the studio, the copy of the new version into the "
            "versions area (kept before anything replaces it) and B's download each move the whole scene; "
            "rsync's delta algorithm sends only the changed blocks (but reads both copies in full). Copies: "
            + "; ".join(data["big_transfer_messages"])
            + ".",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def log(message: str) -> None:
        print(f"[workfile_sync] {message}", file=sys.stderr, flush=True)

    data = run(args.workdir, args.pg, args.saves, args.big, log)
    command = "python -m benchmarks.workfile_sync " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(render(data, command.strip()))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
