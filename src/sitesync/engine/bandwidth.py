"""Bandwidth limits shared by every transfer of a machine: all threads of all worker processes.

Each limit is a *shared bucket*: a 40-byte record in a small file under the machine's data folder
(``<data>/bandwidth/machine.up``, ``site.<name>.down``...), memory-mapped by every process that
transfers and changed under an exclusive file lock (``flock``; ``msvcrt.locking`` on Windows). A
record holds the bucket's *theoretical arrival time* (GCRA, the virtual-scheduling form of a token
bucket), a decaying average of the bytes that went through (the "current rate" shown in status,
API and dashboard) and a byte total. Under a limit every chunk is accounted in the record (a file
lock, a read and a write of the mapped record, an unlock); without one the bytes are summed in the
process and written every quarter second, so metering traffic that no limit governs costs next to
nothing.

Accounting happens after a chunk moved (as rclone does): the transfer thread then sleeps until the
bucket's schedule has caught up, less a small burst allowance. A transfer from site S to site T on
this machine goes through three buckets: the machine's (``up`` or ``down``, see
``transfer_direction``), S's ``down`` and T's ``up``; it waits for the slowest. Limits are read
from the settings at every chunk (cached for a second), so ``sitesync settings set`` and the
timetable's switches apply to running transfers within a chunk, without a restart.

Times: the buckets use the monotonic clock (shared by the processes of one machine); a record
written before a reboot or a clock jump is recognised by comparing the wall and monotonic clocks
and starts afresh. Timetables use this machine's local time. Everything takes a ``Clock`` so tests
run time-dependent behaviour with a fake one.
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sitesync.errors import SitesyncError
from sitesync.providers.base import CAP_LOCAL_PATH, Provider
from sitesync.settings.timetable import InForce, Rate, Timetable, human_rate

if TYPE_CHECKING:
    from sitesync.machine_view import MachineView
    from sitesync.settings.models import SystemSettings

log = logging.getLogger("sitesync.bandwidth")

UP, DOWN = "up", "down"
BURST_SECONDS = 0.05  # a chunk may start this much ahead of the schedule
METER_SECONDS = 5.0  # time constant of the current-rate average
CLOCK_SKEW_SECONDS = 2.0  # wall and monotonic clocks disagreeing by more: a reboot or a clock jump
SETTINGS_RECHECK_SECONDS = 1.0
FLUSH_SECONDS = 0.25  # bytes moved without a limit reach the shared meter at least this often
_RECORD = struct.Struct("<5d")  # schedule (tat), average rate, stamp monotonic, stamp wall, total bytes
FILE_SIZE = 64


class Clock:
    """The real clocks; tests substitute a fake whose ``sleep`` advances time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def local_now(self) -> datetime:
        return datetime.now()

    def sleep(self, seconds: float, cancel: threading.Event | None = None) -> None:
        if cancel is None:
            time.sleep(seconds)
        else:
            cancel.wait(seconds)


SYSTEM_CLOCK = Clock()


# ---------------------------------------------------------------------- the shared record


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

    def _unlock_file(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Reading:
    rate: float  # bytes per second, averaged over the last few seconds
    total: float  # bytes accounted since the record was created


class SharedBucket:
    """One bucket record shared by the threads (a lock) and processes (a file lock) of a machine."""

    def __init__(self, path: Path, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._pending = 0  # bytes accounted without a limit, not yet written to the shared record
        self._flushed = -math.inf

    def _mapped(self) -> tuple[int, mmap.mmap]:
        if self._map is None or self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            try:
                _lock_file(fd)
                try:
                    if os.fstat(fd).st_size < FILE_SIZE:
                        os.ftruncate(fd, FILE_SIZE)
                finally:
                    _unlock_file(fd)
                self._map = mmap.mmap(fd, FILE_SIZE)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd, self._map

    def _record(self, mapped: mmap.mmap, now_m: float, now_w: float) -> tuple[float, ...]:
        record = _RECORD.unpack_from(mapped)
        stamp_m, stamp_w = record[2], record[3]
        if stamp_m and abs((now_w - stamp_w) - (now_m - stamp_m)) > CLOCK_SKEW_SECONDS:
            return (0.0, 0.0, 0.0, 0.0, record[4])  # written before a reboot or a clock jump
        return record

    def reserve(self, nbytes: int, rate: Rate) -> float:
        """Account ``nbytes`` that just moved; return how long the caller should wait so the
        bucket's traffic keeps to ``rate`` (0 without a limit). Without a limit the bytes are
        only counted in this process and written to the shared record every FLUSH_SECONDS: the
        meter needs no more, and many threads copying small files then never queue on the file."""
        with self._lock:
            if rate is None:
                self._pending += nbytes
                if self.clock.monotonic() - self._flushed < FLUSH_SECONDS:
                    return 0.0
                metered, self._pending = self._pending, 0
                return self._write(metered, 0, None)
            # bytes moved before the limit applied are metered, never charged to its schedule
            metered, self._pending = nbytes + self._pending, 0
            return self._write(metered, nbytes, rate)

    def _write(self, metered: int, limited: int, rate: Rate) -> float:
        fd, mapped = self._mapped()
        _lock_file(fd)
        try:
            now_m, now_w = self.clock.monotonic(), self.clock.wall()
            tat, average, stamp_m, _w, total = self._record(mapped, now_m, now_w)
            if stamp_m:
                average = average * math.exp(-max(0.0, now_m - stamp_m) / METER_SECONDS)
            average += metered / METER_SECONDS
            wait = 0.0
            if rate is not None:
                tat = (tat if tat > now_m else now_m) + limited / rate
                wait = max(0.0, tat - now_m - BURST_SECONDS)
            _RECORD.pack_into(mapped, 0, tat, average, now_m, now_w, total + metered)
        finally:
            _unlock_file(fd)
        self._flushed = now_m
        return wait

    def flush(self) -> None:
        """Write the bytes counted in this process to the shared record now."""
        with self._lock:
            if self._pending:
                metered, self._pending = self._pending, 0
                self._write(metered, 0, None)

    def read(self) -> Reading:
        """The bucket's current average rate and total (zero when it was never used)."""
        self.flush()
        if self._map is None and not self.path.exists():
            return Reading(0.0, 0.0)
        with self._lock:
            fd, mapped = self._mapped()
            _lock_file(fd)
            try:
                now_m, now_w = self.clock.monotonic(), self.clock.wall()
                _tat, average, stamp_m, _w, total = self._record(mapped, now_m, now_w)
            finally:
                _unlock_file(fd)
        if not stamp_m:
            return Reading(0.0, total)
        return Reading(average * math.exp(-max(0.0, now_m - stamp_m) / METER_SECONDS), total)

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


# ---------------------------------------------------------------------- limits from settings


@dataclass(frozen=True)
class BandwidthLimits:
    """The timetables in force on this machine: its own and each site's (absent: unlimited)."""

    machine: Timetable | None = None
    sites: Mapping[str, Timetable] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, machine: str | None, system: SystemSettings) -> BandwidthLimits:
        sites = {name: Timetable.parse(site.bandwidth) for name, site in system.sites.items() if site.bandwidth}
        return cls(Timetable.parse(machine) if machine else None, sites)

    def timetable(self, scope: str) -> Timetable | None:
        return self.machine if scope == MACHINE else self.sites.get(scope)


MACHINE = "@machine"  # the scope of the machine-wide limit (site names cannot start with '@')


class ViewLimits:
    """The limits a worker applies, from its current settings view and this machine's local
    settings file (re-read when the file changes, looked at once a second), so a
    ``sitesync settings set [--local] ... bandwidth`` reaches running workers without a restart."""

    def __init__(self, view: Callable[[], MachineView], clock: Clock = SYSTEM_CLOCK) -> None:
        self._view = view
        self._clock = clock
        self._checked = -math.inf
        self._stamp: tuple[int, int] | None = None
        self._machine: str | None = None
        self._system_seen: Any = None
        self._limits = BandwidthLimits()

    def __call__(self) -> BandwidthLimits:
        now = self._clock.monotonic()
        if now - self._checked < SETTINGS_RECHECK_SECONDS:
            return self._limits
        self._checked = now
        view = self._view()
        changed = view.system is not self._system_seen
        stamp = _file_stamp(view.paths.local_settings_file)
        if stamp != self._stamp:
            from sitesync.settings.machine import load_local_settings

            try:
                self._machine = load_local_settings(view.paths).bandwidth
                self._stamp = stamp
                changed = True
            except SitesyncError as exc:  # a half-edited file: keep the limits in force
                log.warning("bandwidth: local settings not re-read: %s", exc)
        if changed:
            self._system_seen = view.system
            try:
                self._limits = BandwidthLimits.from_settings(self._machine, view.system)
            except ValueError as exc:  # stored settings are validated on write; be safe anyway
                log.warning("bandwidth: limits not changed: %s", exc)
        return self._limits


def _file_stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


# ---------------------------------------------------------------------- machine and transfers


def transfer_direction(source: str, target: str, site_id: str, source_local: bool, target_local: bool) -> str:
    """Which of the machine's limits a transfer counts against: ``down`` when the bytes land on
    this machine (its own site, or a mounted file system fed from remote storage), else ``up``."""
    if target == site_id:
        return DOWN
    if source == site_id:
        return UP
    return DOWN if target_local and not source_local else UP


class MachineBandwidth:
    """This machine's buckets and limits. One per worker; buckets are shared through files."""

    def __init__(
        self,
        folder: Path,
        limits: Callable[[], BandwidthLimits],
        site_id: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.folder = folder
        self.limits = limits
        self.site_id = site_id
        self.clock = clock
        self._buckets: dict[str, SharedBucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def for_view(cls, view: Callable[[], MachineView], clock: Clock = SYSTEM_CLOCK) -> MachineBandwidth:
        current = view()
        return cls(current.paths.bandwidth_dir, ViewLimits(view, clock), current.site_id, clock)

    def bucket(self, scope: str, direction: str) -> SharedBucket:
        name = f"machine.{direction}" if scope == MACHINE else f"site.{scope}.{direction}"
        with self._lock:
            found = self._buckets.get(name)
            if found is None:
                found = self._buckets[name] = SharedBucket(self.folder / name, self.clock)
            return found

    def rate(self, scope: str, direction: str, limits: BandwidthLimits | None = None) -> Rate:
        timetable = (limits or self.limits()).timetable(scope)
        if timetable is None:
            return None
        return timetable.at(self.clock.local_now()).limit.rate(direction)

    def throttle(
        self,
        source: str,
        target: str,
        source_provider: Provider,
        target_provider: Provider,
        cancel: threading.Event | None = None,
    ) -> Throttle:
        direction = transfer_direction(
            source,
            target,
            self.site_id,
            CAP_LOCAL_PATH in source_provider.supported_capabilities(),  # on a disk of this machine
            CAP_LOCAL_PATH in target_provider.supported_capabilities(),
        )
        return Throttle(self, [(MACHINE, direction), (source, DOWN), (target, UP)], cancel)

    def status(self) -> dict[str, Any]:
        """The limits in force now and the current rates: the machine's, and each site's that
        has a limit or recent traffic on this machine."""
        limits = self.limits()
        now = self.clock.local_now()
        used = set()
        if self.folder.is_dir():
            for entry in self.folder.iterdir():
                parts = entry.name.split(".")
                if parts[0] == "site" and len(parts) >= 3:
                    used.add(".".join(parts[1:-1]))
        sites = sorted(set(limits.sites) | used)
        return {
            "machine": self._scope_status(MACHINE, limits.machine, now),
            "sites": {name: self._scope_status(name, limits.sites.get(name), now) for name in sites},
        }

    def _scope_status(self, scope: str, timetable: Timetable | None, now: datetime) -> dict[str, Any]:
        in_force: InForce | None = timetable.at(now) if timetable is not None else None
        out: dict[str, Any] = {
            "schedule": timetable.text if timetable is not None else None,
            "changes_at": in_force.changes_at.isoformat(timespec="minutes")
            if in_force and in_force.changes_at
            else None,
            "next": in_force.next_text if in_force else None,
        }
        for direction in (UP, DOWN):
            limit = in_force.limit.rate(direction) if in_force else None
            reading = self.bucket(scope, direction).read()
            out[direction] = {
                "limit": limit,
                "limit_text": human_rate(limit),
                "rate": round(reading.rate, 1),
                "rate_text": human_rate(reading.rate) if reading.rate >= 1 else "idle",
                "total": int(reading.total),
            }
        return out

    def close(self) -> None:
        with self._lock:
            buckets, self._buckets = list(self._buckets.values()), {}
        for b in buckets:
            b.close()


class Throttle:
    """The buckets one transfer goes through; ``wrap`` puts them into its byte counter."""

    def __init__(
        self, machine: MachineBandwidth, scopes: list[tuple[str, str]], cancel: threading.Event | None
    ) -> None:
        self.machine = machine
        self.scopes = scopes
        self.cancel = cancel
        self._buckets = [machine.bucket(scope, direction) for scope, direction in scopes]

    @property
    def limited(self) -> bool:
        """Whether any of the transfer's limits is in force now."""
        limits = self.machine.limits()
        return any(self.machine.rate(scope, direction, limits) is not None for scope, direction in self.scopes)

    def account(self, nbytes: int) -> None:
        """Count ``nbytes`` in every bucket and wait as long as the slowest limit needs
        (returns early when the transfer is cancelled)."""
        limits = self.machine.limits()
        now = None
        wait = 0.0
        for (scope, direction), bucket in zip(self.scopes, self._buckets, strict=True):
            timetable = limits.timetable(scope)
            rate = None
            if timetable is not None:
                now = now or self.machine.clock.local_now()
                rate = timetable.at(now).limit.rate(direction)
            wait = max(wait, bucket.reserve(nbytes, rate))
        if wait > 0 and not (self.cancel is not None and self.cancel.is_set()):
            self.machine.clock.sleep(wait, self.cancel)

    def wrap(self, on_bytes: Callable[[int], None] | None) -> Callable[[int], None]:
        def counted(nbytes: int) -> None:
            if on_bytes is not None:
                on_bytes(nbytes)  # progress first: it also raises when the transfer was cancelled
            self.account(nbytes)

        return counted


__all__ = [
    "DOWN",
    "MACHINE",
    "UP",
    "BandwidthLimits",
    "Clock",
    "MachineBandwidth",
    "SharedBucket",
    "Throttle",
    "ViewLimits",
    "transfer_direction",
]
