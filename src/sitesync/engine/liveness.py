"""Is a worker alive? Heartbeats, and giving back the work of dead workers on time.

Every running worker registers its host, the host's boot id and its pid (``state/workers.py``) and
a small thread beats every ``HEARTBEAT_SECONDS``. A lease is given back to the queue:

* **at once** when its worker ran on this machine and its process no longer exists (or the
  machine rebooted since: another boot id). A killed worker's files are free for the next
  ``sync --once``, ``remove`` or worker on this machine, with no waiting;
* after **``HEARTBEAT_TIMEOUT_SECONDS`` of silence** for workers on other machines (a crashed
  host, a cut network). The silence is measured on the database's clock, and only judged by a
  worker whose own heartbeats have been getting through for at least that long: after a database
  outage nobody mistakes the others' enforced silence for death;
* when its lease expires (``--lease``, 60 s by default: the backstop for a worker whose main loop
  hangs while its heartbeat thread still beats, and for workers of older versions).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sitesync.state.store import StateStore
    from sitesync.state.workers import WorkerRow

log = logging.getLogger("sitesync.worker")

HEARTBEAT_SECONDS = 5.0
HEARTBEAT_TIMEOUT_SECONDS = 20.0  # four missed beats; a third of the default lease


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def this_host() -> str:
    return socket.gethostname()


def boot_id() -> str:
    """This machine's boot id (Linux); '' where there is none."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    return ""


def dead_workers(
    rows: Iterable[WorkerRow],
    *,
    host: str,
    boot: str,
    judge_silence: bool,
    timeout: float = HEARTBEAT_TIMEOUT_SECONDS,
    exclude: str | None = None,
) -> dict[str, str]:
    """Worker id -> why it is dead, for the workers known dead: this machine's whose process is
    gone (or from an earlier boot), and, when ``judge_silence``, any silent for ``timeout``."""
    dead: dict[str, str] = {}
    for w in rows:
        if w.id == exclude:
            continue
        if w.host == host and w.boot_id and boot and w.boot_id != boot:
            dead[w.id] = f"(pid {w.pid} on {w.host}) ran before the machine restarted"
        elif w.host == host and (not w.boot_id or not boot or w.boot_id == boot) and not pid_alive(w.pid):
            dead[w.id] = f"(pid {w.pid} on {w.host}) is no longer running"
        elif judge_silence and w.silent_for > timeout:
            dead[w.id] = f"(pid {w.pid} on {w.host}) sent no heartbeat for {w.silent_for:.0f}s"
    return dead


def reclaim_dead_leases(store: StateStore, *, judge_silence: bool = False, exclude: str | None = None) -> int:
    """Give back the transfers of workers known dead (see the module). Returns how many went back."""
    dead = dead_workers(store.workers(), host=this_host(), boot=boot_id(), judge_silence=judge_silence, exclude=exclude)
    n = store.reclaim_leases(dead) if dead else 0
    if n:
        log.warning(
            "returned %d transfers of stopped workers to the queue (%s)", n, "; ".join(sorted(set(dead.values())))
        )
    return n


class Heartbeat:
    """Registers a worker and beats for it from a thread of its own (so a long provider call in
    the worker's loop never makes it look dead); ``healthy_for()`` says how long the beats have
    been getting through without a gap."""

    def __init__(self, store: StateStore, worker_id: str, site_id: str, interval: float = HEARTBEAT_SECONDS) -> None:
        self.store = store
        self.worker_id = worker_id
        self.site_id = site_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sitesync-heartbeat", daemon=True)
        self._healthy_since: float | None = None
        self._registered = False

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def healthy_for(self) -> float:
        since = self._healthy_since
        return 0.0 if since is None else time.monotonic() - since

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._registered:
            with contextlib.suppress(Exception):  # the database may be down; the row then ages out
                self.store.forget_worker(self.worker_id)

    def _beat(self) -> None:
        try:
            if not self._registered or not self.store.worker_heartbeat(self.worker_id):
                self.store.register_worker(self.worker_id, this_host(), boot_id(), os.getpid(), self.site_id)
                self._registered = True
        except Exception as exc:  # the database is down: the worker's loop reports that itself
            self._healthy_since = None
            log.debug("heartbeat not recorded: %s", exc)
            return
        if self._healthy_since is None:
            self._healthy_since = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()


__all__ = [
    "HEARTBEAT_SECONDS",
    "HEARTBEAT_TIMEOUT_SECONDS",
    "Heartbeat",
    "boot_id",
    "dead_workers",
    "pid_alive",
    "reclaim_dead_leases",
    "this_host",
]
