"""``faulty``: wraps any provider and injects faults, reproducibly, for reliability tests.

A test-only provider (``sitesync.test_providers``: it resolves where ``sitesync.testing`` switched
test providers on, ``SITESYNC_TEST_PROVIDERS=1``). Configured like any site (so worker subprocesses
get it from the settings), for example::

    SITESYNC_TEST_PROVIDERS=1 sitesync site add flaky --provider faulty --root work=/mnt/x \\
        --set inner=local_drive --set seed=7 --set transient_rate=0.2

Each fault kind has a rate in [0, 1]. Whether an operation on a path fails is decided by a random
generator seeded with (seed, operation, path, how many times this process did that operation on
that path), so a run is reproducible whatever the thread interleaving, and each retry rolls anew.

Faults: ``transient`` (TransientStorageError), ``timeout`` (a stall, then TransientStorageError),
``unavailable`` (SiteUnavailableError), ``permission`` (PermissionError -> PermanentStorageError),
``enospc`` (the source stream raises ENOSPC half way through a write; ``local_drive`` maps it as a
real full disk, remote inner providers pass the stream's error on unchanged),
``truncate`` and ``flip`` (reads return a short stream / one flipped byte: only hash verification
can notice; an empty file cannot be damaged), and ``slow_read_bytes_per_second`` (throttled reads).
"""

from __future__ import annotations

import builtins
import errno
import io
import random
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, BinaryIO

from pydantic import Field

from sitesync.errors import (
    SiteUnavailableError,
    TransientStorageError,
    storage_error_from_os,
)
from sitesync.providers.base import CommitCheck, Entry, OptionsOf, Provider, ProviderConfig, ReadableStream
from sitesync.providers.registry import provider_class

Rate = Field(0.0, ge=0.0, le=1.0)


class FaultyConfig(ProviderConfig):
    inner: str = "local_drive"
    """The provider whose storage is used (and whose operations fail on purpose)."""
    inner_options: Annotated[dict[str, Any], OptionsOf("inner")] = Field(default_factory=dict)
    """That provider's options."""
    seed: int = 0
    """Seed of the fault dice: the same seed injects the same faults in the same order."""
    transient_rate: float = Rate
    """Share (0-1) of operations that fail with a transient error (retried)."""
    timeout_rate: float = Rate
    """Share of operations that hang for timeout_seconds, then fail as timed out."""
    timeout_seconds: float = Field(0.2, ge=0.0, le=60.0)
    """How long an injected timeout hangs first."""
    unavailable_rate: float = Rate
    """Share of operations that report the whole site unreachable."""
    permission_rate: float = Rate
    """Share of operations refused with permission denied (permanent: no retry helps)."""
    enospc_rate: float = Rate
    """Share of writes that run out of space (ENOSPC) part way."""
    truncate_rate: float = Rate
    """Share of reads whose stream ends early."""
    flip_rate: float = Rate
    """Share of reads with one byte flipped."""
    slow_read_bytes_per_second: int = Field(0, ge=0)
    """Throttle every read to this many bytes per second (0: no throttle)."""
    operations: list[str] = Field(default_factory=lambda: ["read", "write"])
    """Which operations faults apply to: read, write, stat, delete, list."""


class _Stream(io.RawIOBase):
    """A read stream that can end early, flip a byte, throttle, or fail with ENOSPC midway."""

    def __init__(
        self,
        raw: ReadableStream,
        *,
        limit: int | None = None,
        flip_at: int | None = None,
        enospc_at: int | None = None,
        bytes_per_second: int = 0,
    ) -> None:
        self._raw = raw
        self._pos = 0
        self._limit = limit
        self._flip_at = flip_at
        self._enospc_at = enospc_at
        self._rate = bytes_per_second
        self._started = time.monotonic()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        want = len(buffer)
        if self._limit is not None:
            want = min(want, max(0, self._limit - self._pos))
            if want == 0:
                return 0
        if self._enospc_at is not None and self._pos >= self._enospc_at:
            raise OSError(errno.ENOSPC, "No space left on device (injected)")
        data = self._raw.read(want)
        if not data:
            return 0
        n = len(data)
        if self._flip_at is not None and self._pos <= self._flip_at < self._pos + n:
            i = self._flip_at - self._pos
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
        buffer[:n] = data
        self._pos += n
        if self._rate:
            ahead = self._pos / self._rate - (time.monotonic() - self._started)
            if ahead > 0:
                time.sleep(ahead)
        return n

    def close(self) -> None:
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()
        super().close()


class FaultyProvider(Provider):
    name = "faulty"
    Config = FaultyConfig
    description = "wraps another provider and injects faults (reliability tests)"
    config: FaultyConfig

    def __init__(self, site: str, config: FaultyConfig, roots: Mapping[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self.inner = provider_class(config.inner).from_options(site, config.inner_options, roots)
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def _roll(self, op: str, path: str) -> float:
        with self._lock:
            n = self._counts.get((op, path), 0)
            self._counts[(op, path)] = n + 1
        return random.Random(f"{self.config.seed}:{op}:{path}:{n}").random()

    def _inject(self, op: str, path: str) -> str | None:
        """Raise a fault for ``op`` on ``path``, or return a stream fault kind to apply, or None."""
        if op not in self.config.operations:
            return None
        c = self.config
        roll = self._roll(op, path)
        edge = 0.0
        for kind, rate in (
            ("transient", c.transient_rate),
            ("timeout", c.timeout_rate),
            ("unavailable", c.unavailable_rate),
            ("permission", c.permission_rate),
            ("enospc", c.enospc_rate if op == "write" else 0.0),
            ("truncate", c.truncate_rate if op == "read" else 0.0),
            ("flip", c.flip_rate if op == "read" else 0.0),
        ):
            edge += rate
            if roll < edge:
                if kind == "transient":
                    raise TransientStorageError(
                        f"site {self.site}: {op} {path}: connection reset (injected)", site=self.site
                    )
                if kind == "timeout":
                    time.sleep(c.timeout_seconds)
                    raise TransientStorageError(f"site {self.site}: {op} {path}: timed out (injected)", site=self.site)
                if kind == "unavailable":
                    raise SiteUnavailableError(f"site {self.site}: unreachable (injected)", site=self.site)
                if kind == "permission":
                    raise storage_error_from_os(
                        PermissionError(errno.EACCES, "Permission denied (injected)"),
                        f"site {self.site}: {op} {path}",
                        site=self.site,
                    )
                return kind
        return None

    # ---- contract -----------------------------------------------------------------------------

    def check(self) -> None:
        self.inner.check()

    def stat(self, path: str) -> Entry | None:
        self._inject("stat", path)
        return self.inner.stat(path)

    def open_read(self, path: str) -> BinaryIO:
        kind = self._inject("read", path)
        raw = self.inner.open_read(path)
        if kind is None and not self.config.slow_read_bytes_per_second:
            return raw
        size = getattr(self.inner.stat(path), "size", 0) or 0
        limit = size // 2 if kind == "truncate" else None
        flip = size // 2 if kind == "flip" and size else None
        stream = _Stream(raw, limit=limit, flip_at=flip, bytes_per_second=self.config.slow_read_bytes_per_second)
        return io.BufferedReader(stream, 1024 * 1024)

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        kind = self._inject("write", path)
        if kind == "enospc":
            stream = io.BufferedReader(_Stream(stream, enospc_at=max(1, size // 2)), 1024 * 1024)
        return self.inner.write(path, stream, size, commit_check)

    def delete(self, path: str) -> None:
        self._inject("delete", path)
        self.inner.delete(path)

    def list(self, prefix: str) -> Iterator[Entry]:
        self._inject("list", prefix)
        return self.inner.list(prefix)

    # the site's marker is its identity, not one of the file operations faults are injected into
    def read_small(self, path: str, limit: int) -> bytes | None:
        return self.inner.read_small(path, limit)

    def write_small(self, path: str, data: bytes) -> None:
        self.inner.write_small(path, data)

    def folders_above(self, base: str) -> builtins.list[str]:
        return self.inner.folders_above(base)

    def read_small_above(self, path: str, limit: int) -> bytes | None:
        return self.inner.read_small_above(path, limit)

    def sweep_leftovers(self, prefix: str, older_than: float | None = None) -> builtins.list[str]:
        if older_than is None:
            return self.inner.sweep_leftovers(prefix)
        return self.inner.sweep_leftovers(prefix, older_than)

    def close(self) -> None:
        self.inner.close()
