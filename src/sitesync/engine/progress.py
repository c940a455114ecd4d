"""In-memory progress of a worker: byte counters wrapped around streams, published as snapshots.

Transfer threads add bytes; the worker's main thread and the faces read snapshots. Only outcomes
and throttled in-flight byte counts reach the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class InFlight:
    replica_id: int
    path: str
    site: str
    source: str
    size: int
    done: int
    started: float


@dataclass(frozen=True)
class ProgressSnapshot:
    files_done: int
    files_failed: int
    bytes_done: int  # bytes of finished transfers plus bytes of running ones
    files_claimed: int
    bytes_claimed: int
    in_flight: tuple[InFlight, ...] = ()
    started: float = field(default_factory=time.time)


class Progress:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, list] = {}  # replica id -> [path, site, source, size, done, started]
        self.files_done = 0
        self.files_failed = 0
        self.bytes_finished = 0
        self.files_claimed = 0
        self.bytes_claimed = 0
        self.started = time.time()

    def claimed(self, files: int, size: int) -> None:
        with self._lock:
            self.files_claimed += files
            self.bytes_claimed += size

    def start(self, replica_id: int, path: str, site: str, source: str, size: int) -> None:
        with self._lock:
            self._running[replica_id] = [path, site, source, size, 0, time.time()]

    def counter(self, replica_id: int) -> Callable[[int], None]:
        entry = self._running[replica_id]
        lock = self._lock

        def add(n: int) -> None:
            with lock:
                entry[4] += n

        return add

    def finish(self, replica_id: int, ok: bool, nbytes: int) -> None:
        with self._lock:
            self._running.pop(replica_id, None)
            if ok:
                self.files_done += 1
                self.bytes_finished += nbytes
            else:
                self.files_failed += 1

    def released(self, replica_id: int, size: int) -> None:
        """A claimed file was handed back untransferred (site unavailable, stopping)."""
        with self._lock:
            self._running.pop(replica_id, None)
            self.files_claimed -= 1
            self.bytes_claimed -= size

    def in_flight_bytes(self) -> dict[int, int]:
        with self._lock:
            return {rid: e[4] for rid, e in self._running.items()}

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            running = tuple(InFlight(rid, e[0], e[1], e[2], e[3], e[4], e[5]) for rid, e in self._running.items())
            return ProgressSnapshot(
                files_done=self.files_done,
                files_failed=self.files_failed,
                bytes_done=self.bytes_finished + sum(x.done for x in running),
                files_claimed=self.files_claimed,
                bytes_claimed=self.bytes_claimed,
                in_flight=running,
                started=self.started,
            )
