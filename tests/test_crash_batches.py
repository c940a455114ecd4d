"""SIGKILL of a real worker process in the middle of a batch of staged copies (local_drive's batched
durability): before the batch's syncfs, in the middle of its renames, and after the renames but
before the catalog records them. Every file the catalog says present must be complete and verified
on disk, nothing partial or unverified may be under a final name, and a restart must converge with
no temporary file left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reliability.harness import SITE_ID, check_site, make_env, publish_on_studio, run_cli

from sitesync.providers import fileio

# Runs the real worker (``sitesync worker``) and kills it with SIGKILL at the n-th time it reaches
# one point of the batch commit. Only the moment is chosen here; nothing of the worker is replaced.
KILLER = r"""
import os, signal, sys
from sitesync.engine import worker
from sitesync.providers import local_drive

point, nth = sys.argv[1], int(sys.argv[2])
reached = 0

def reach():
    global reached
    reached += 1
    if reached == nth:
        os.kill(os.getpid(), signal.SIGKILL)

if point == "before-syncfs":  # copies staged and verified, not yet durable
    real_syncfs = local_drive.syncfs
    def syncfs(fd):
        reach()
        real_syncfs(fd)
    local_drive.syncfs = syncfs
elif point == "mid-renames":  # the batch durable, some of it renamed
    real_replace, real_noreplace = os.replace, local_drive.rename_noreplace
    def replace(src, dst, **kw):
        if str(src).startswith(".sitesync-"):
            reach()
        real_replace(src, dst, **kw)
    def rename_noreplace(src, dst, dir_fd):
        reach()
        return real_noreplace(src, dst, dir_fd)
    os.replace = replace
    local_drive.rename_noreplace = rename_noreplace
elif point == "before-record":  # the batch durable and renamed, not yet in the catalog
    real_make_durable = worker.Worker._make_durable
    def make_durable(self, batch):
        out = real_make_durable(self, batch)
        if any(o.kind == "present" for o in out):
            reach()
        return out
    worker.Worker._make_durable = make_durable
else:
    raise SystemExit(f"unknown point {point}")

sys.argv = ["sitesync", "worker", "--log-level", "warning", *sys.argv[3:]]
from sitesync.cli import main
main()
"""

FILES = 400


@pytest.mark.skipif(not fileio.syncfs_trusted(Path(__file__).stat().st_dev), reason="no staged writes here")
@pytest.mark.parametrize(("point", "nth"), [("before-syncfs", 3), ("mid-renames", 7), ("before-record", 2)])
def test_sigkill_in_the_middle_of_a_batch(tmp_path: Path, point: str, nth: int) -> None:
    env = make_env(tmp_path / "env")
    try:
        rep = publish_on_studio(env, FILES, 16 * 1024)
        env.client.download(rep)
        worker = subprocess.run(
            [
                sys.executable,
                "-c",
                KILLER,
                point,
                str(nth),
                "--lease",
                "600",
                "--concurrency",
                "4",
                "--batch-size",
                "64",
            ],
            env=env.environ(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert worker.returncode == -signal.SIGKILL, f"the worker was not killed at {point}: {worker.stderr[-2000:]}"

        base = env.local_root / "work"
        folder = base / "rel" / "seq"  # where publish_on_studio's files go
        after_kill = check_site(env, rep, SITE_ID, base, live_leases_ok=True)
        assert after_kill.lost == 0, "the catalog says present for a file that is not complete and verified on disk"
        assert after_kill.corrupt == 0, "something partial or unverified is under a final name"
        assert after_kill.statuses.get("present", 0) > 0 or point != "before-syncfs", after_kill
        assert after_kill.statuses.get("in_progress", 0) > 0, "the kill did not land while files were in a batch"
        finals = {p.name for p in folder.glob("f.*.bin")}
        temps = [p for p in folder.glob(".sitesync-*") if p.stat().st_size == 16 * 1024]
        if point in ("before-syncfs", "mid-renames"):
            assert temps, "no staged copy was waiting under its temporary name when the worker was killed"
        if point in ("mid-renames", "before-record"):
            assert len(finals) > after_kill.present, "no copy was renamed but not yet recorded at the kill"

        sync = run_cli(env, "sync", "--once", "--json")
        assert sync.returncode == 0, sync.stderr[-2000:]
        final = check_site(env, rep, SITE_ID, base)
        assert (final.present, final.lost, final.corrupt, final.stuck) == (FILES, 0, 0, 0), final
        assert final.leftovers == 0, "temporary files of the killed batch were left behind"
    finally:
        env.close()
