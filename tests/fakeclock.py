"""A fake clock for the bandwidth limiter: ``sleep`` advances time instead of waiting, and records
each wait, so rate behaviour is checked exactly and without wall-clock timing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sitesync.engine.bandwidth import Clock


class FakeClock(Clock):
    def __init__(self, start: datetime, on_sleep: Callable[[FakeClock], None] | None = None) -> None:
        self.start = start
        self.elapsed = 0.0
        self.sleeps: list[tuple[datetime, float]] = []  # (local time when the wait began, seconds)
        self.on_sleep = on_sleep
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return 1000.0 + self.elapsed

    def wall(self) -> float:
        return self.start.timestamp() + self.elapsed

    def local_now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> None:
        with self._lock:
            self.sleeps.append((self.local_now(), seconds))
            self.elapsed += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.elapsed += seconds
