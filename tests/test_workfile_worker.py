"""The running worker syncs workfiles by itself (issue 15): real ``sitesync worker`` processes for two
workstations sharing one catalog (``tests/workfilekit.py``). A save on A is heard by A's watcher,
scanned at once (a hinted pass) and arrives on the studio storage and on B with no ``work sync``;
a save in a folder made after the worker started too. B's worker learns of A's recorded save
through a PostgreSQL notification, or on SQLite at its next turn (``loop_delay`` 1 s here). The
worker's debug log must show the hinted pass (the watcher, not a periodic full scan, found it).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sitesync.machine_view import ProviderPool
from sitesync.workfiles.loop import WorkfileLoop
from tests.test_crash_and_workers import wait_for
from tests.workfilekit import PROJECT, SCENE, Machine, Workstations, workstations


@contextmanager
def running_worker(m: Machine, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sitesync", "worker", "--log-level", "debug"],
            env=m.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _on_studio(ws: Workstations, rel: str) -> bytes | None:
    path = ws.studio / PROJECT / rel
    return path.read_bytes() if path.exists() else None


def test_a_save_on_a_reaches_the_studio_and_b_through_the_running_workers(
    tmp_path: Path, db_url: str, home: Path
) -> None:
    with workstations(tmp_path, db_url) as ws:
        if not db_url.startswith("postgresql"):
            ws.a.client.settings_set("loop_delay", 1, project=PROJECT)  # B polls; PostgreSQL wakes it
        ws.a.save(SCENE, b"v1 from A")
        log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
        with running_worker(ws.a, log_a) as proc_a, running_worker(ws.b, log_b) as proc_b:
            # the first (full) pass of A's worker takes what was there before it started
            assert wait_for(lambda: ws.b.read(SCENE) == b"v1 from A", 120, 0.1), log_a.read_text()[-3000:]
            assert _on_studio(ws, SCENE) == b"v1 from A"
            assert wait_for(lambda: "full pass (watched: True)" in log_a.read_text(), 60, 0.1), log_a.read_text()[
                -3000:
            ]

            ws.a.save(SCENE, b"v2 from A, a little longer")
            assert wait_for(lambda: ws.b.read(SCENE) == b"v2 from A, a little longer", 120, 0.1), (
                log_a.read_text()[-3000:] + log_b.read_text()[-3000:]
            )
            assert _on_studio(ws, SCENE) == b"v2 from A, a little longer"
            assert f"hinted pass over ws-a:work:{SCENE}" in log_a.read_text()

            new = "sh020/work/fx/sh020_fx_v001.hip"  # a folder made after the watch began
            ws.a.save(new, b"fx scene")
            assert wait_for(lambda: ws.b.read(new) == b"fx scene", 120, 0.1), log_a.read_text()[-3000:]
            assert _on_studio(ws, new) == b"fx scene"
            assert "hinted pass over ws-a:work:sh020" in log_a.read_text()
            assert proc_a.poll() is None and proc_b.poll() is None
        assert proc_a.returncode == 0 and proc_b.returncode == 0
        assert "Traceback" not in log_a.read_text() + log_b.read_text()
        assert [v.number for v in ws.a.client.work_history(PROJECT, SCENE)] == [1, 2]


def test_the_loop_degrades_to_periodic_scans_where_it_cannot_watch(tmp_path: Path, db_url: str, home: Path) -> None:
    """A work area that is not there yet cannot be watched: the loop says why, keeps running full
    passes at the unwatched pace (``loop_delay`` 1 s here) and they pick up what is saved there."""
    with workstations(tmp_path, db_url) as ws:
        c = ws.a.client
        c.settings_set("loop_delay", 1, project=PROJECT)
        woken: list[int] = []
        loop = WorkfileLoop(c.store, "test-worker", ProviderPool(), "ws-a", paced=True, wake=lambda: woken.append(1))
        try:
            views = {PROJECT: c.project_view(PROJECT)}
            ids = {PROJECT: c.store.project(PROJECT).id}
            loop.step(views, ids)  # no project folder on A yet
            state = loop.watch_state(PROJECT)
            assert len(state) == 1 and "no such file or folder" in (next(iter(state.values())) or ""), state
            ws.a.save(SCENE, b"saved while unwatched")

            def synced() -> bool:
                loop.step(views, ids)
                return _on_studio(ws, SCENE) == b"saved while unwatched"

            assert wait_for(synced, 60, 0.2)
        finally:
            loop.close()
