"""Benchmark of the studio workflows on a throwaway SQLite studio with local-drive sites.

    .venv/bin/python -m benchmarks.workflows [--small N] [--large N] [--reps N]

* ``fsck``: re-hash every copy on the studio site, compared with ``md5sum`` and ``cksum`` reading
  the same files in the same run (both stream every byte; ratios > 1 mean sitesync is slower);
* ``validate``: register the same files found on a freshly attached drive (walk + hash + record);
* preferred content: a full rule pass over ``--reps`` representations, and one worker-loop step
  when nothing is new (the cost every loop pays).

Nothing is asserted; numbers are printed. Files are written once, then read warm from the page
cache in every measurement (the comparison is of the software, not of the disk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from sitesync import Client
from sitesync.state.records import RepresentationKey
from sitesync.workflows.preferred import PreferredContent


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _tool(cmd: str, files: list[str]) -> float:
    started = time.perf_counter()
    for start in range(0, len(files), 500):
        subprocess.run([cmd, *files[start : start + 500]], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=2000, help="64 KiB files")
    ap.add_argument("--large", type=int, default=4, help="64 MiB files")
    ap.add_argument("--reps", type=int, default=5000, help="representations for the rule pass")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="sitesync-bench-"))
    os.environ["SITESYNC_HOME"] = str(base / "home")
    os.environ["SITESYNC_SITE_ID"] = "ws-bench"
    try:
        studio = base / "studio"
        c = Client(db=f"sqlite:///{base / 'state.db'}")
        c.init()
        c.create_project("show", {"work": {"any": str(studio)}})
        c.settings_set("active_site", "local", project="show")
        files: list[str] = []
        for i in range(args.small):
            p = studio / f"show/sh{i // 100:03d}/small/f{i:05d}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(64 * 1024))
            files.append(str(p))
        for i in range(args.large):
            p = studio / f"show/large/big{i}.bin"
            p.parent.mkdir(parents=True, exist_ok=True)
            with open(p, "wb") as fh:
                for _ in range(64):
                    fh.write(os.urandom(1024 * 1024))
            files.append(str(p))
        total = sum(os.path.getsize(f) for f in files)
        for start in range(0, len(files), 500):
            c.publish(
                "show",
                folder=f"batch{start}",
                product="data",
                version=1,
                name="bin",
                files=files[start : start + 500],
                site="studio",
            )
        print(f"{len(files)} files, {total / 2**20:.0f} MiB")

        _tool("md5sum", files)  # warm the page cache
        t_fsck, result = _timed(lambda: c.fsck("studio"))
        assert result["ok"] == len(files)
        t_md5 = _tool("md5sum", files)
        t_cksum = _tool("cksum", files)
        rate = total / t_fsck / 2**20
        print(f"fsck studio      {t_fsck:6.2f}s  {rate:7.0f} MiB/s  {len(files) / t_fsck:7.0f} files/s")
        print(f"md5sum           {t_md5:6.2f}s  ratio fsck/md5sum {t_fsck / t_md5:.2f}")
        print(f"cksum            {t_cksum:6.2f}s  ratio fsck/cksum  {t_fsck / t_cksum:.2f}")

        drive = base / "drive"
        shutil.copytree(studio, drive)
        c.add_site("drive", "local_drive", [f"work={drive}"], {})
        t_val, result = _timed(lambda: c.validate("drive"))
        assert result["registered"] == len(files)
        print(f"validate drive   {t_val:6.2f}s  {total / t_val / 2**20:7.0f} MiB/s  {len(files) / t_val:7.0f} files/s")

        pid = c.store.project("show").id
        for i in range(args.reps):
            c.store.publish(
                pid,
                RepresentationKey(f"seq{i % 10}/sh{i % 200:03d}", f"prod{i % 7}", i // 1400 + 1, "exr"),
                [],
                "studio",
                [],
                "bench",
            )
        c.settings_set("sites.local.wants", "latest and folder:*/sh01*", project="show")
        machine = c.view()
        views = {"show": machine.project("show")}
        hook = PreferredContent(c.store, "bench", paced=False)
        t_full, _ = _timed(lambda: hook.step(machine, views, {"show": pid}))
        hook._last_step = 0.0
        t_idle, _ = _timed(lambda: hook.step(machine, views, {"show": pid}))
        n = args.reps + len(files) // 500 + 1
        print(f"rule full pass   {t_full:6.2f}s  over {n} representations ({n / t_full:.0f}/s)")
        print(f"rule idle step   {t_idle * 1000:6.2f}ms (nothing new)")
        c.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
