"""``memory``: files kept in this process's memory, for tests (a test-only provider: it resolves
where ``sitesync.testing`` switched test providers on).

Sites that use the same ``namespace`` see the same files, so several provider instances (several
workers in one process) share storage. Writes become visible only after ``commit_check`` passes.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from pydantic import SecretStr

from sitesync.errors import PermanentStorageError, SiteUnavailableError
from sitesync.providers.base import CommitCheck, Entry, Provider, ProviderConfig, ReadableStream

_STORES: dict[str, dict[str, tuple[bytes, float]]] = {}
_OFFLINE: set[str] = set()
_LOCK = threading.Lock()


class MemoryConfig(ProviderConfig):
    namespace: str = "default"
    """Sites with the same namespace share one in-process store (tests only)."""
    token: SecretStr | None = None
    """Not used to store anything: lets tests exercise secret masking end to end."""


def set_offline(namespace: str, offline: bool = True) -> None:
    """Make every site on ``namespace`` unreachable (or reachable again); for tests."""
    with _LOCK:
        (_OFFLINE.add if offline else _OFFLINE.discard)(namespace)


def clear(namespace: str | None = None) -> None:
    with _LOCK:
        if namespace is None:
            _STORES.clear()
            _OFFLINE.clear()
        else:
            _STORES.pop(namespace, None)
            _OFFLINE.discard(namespace)


class MemoryProvider(Provider):
    name = "memory"
    Config = MemoryConfig
    description = "in-process memory (tests only)"
    config: MemoryConfig

    @property
    def _files(self) -> dict[str, tuple[bytes, float]]:
        with _LOCK:
            return _STORES.setdefault(self.config.namespace, {})

    def _online(self) -> None:
        if self.config.namespace in _OFFLINE:
            raise SiteUnavailableError(
                f"site {self.site}: memory namespace {self.config.namespace!r} is offline", site=self.site
            )

    def check(self) -> None:
        self._online()

    def stat(self, path: str) -> Entry | None:
        self._online()
        item = self._files.get(path)
        if item is None:
            return None
        return Entry(path=path, size=len(item[0]), mtime=item[1])

    def open_read(self, path: str) -> BinaryIO:
        self._online()
        item = self._files.get(path)
        if item is None:
            raise PermanentStorageError(f"site {self.site}: read {path}: no such file", site=self.site)
        return io.BytesIO(item[0])

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        self._online()
        parts = []
        while True:
            chunk = stream.read(1024 * 1024)
            if not chunk:
                break
            parts.append(chunk)
        data = b"".join(parts)
        commit_check()
        now = time.time()
        with _LOCK:
            _STORES.setdefault(self.config.namespace, {})[path] = (data, now)
        return Entry(path=path, size=len(data), mtime=now)

    def delete(self, path: str) -> None:
        self._online()
        with _LOCK:
            _STORES.setdefault(self.config.namespace, {}).pop(path, None)

    def list(self, prefix: str) -> Iterator[Entry]:
        self._online()
        base = prefix.rstrip("/") + "/"
        with _LOCK:
            items = sorted(_STORES.get(self.config.namespace, {}).items())
        for path, (data, mtime) in items:
            if path.startswith(base):
                yield Entry(path=path, size=len(data), mtime=mtime)
