"""``local_drive``: any storage mounted as a file system (local disk, NAS, SMB/NFS share).

Writes go to a hidden temporary file next to the target, are fsynced, checked by the caller's
``commit_check`` and only then renamed over the final name (``os.replace`` is atomic on one file
system). Temporary files of a crashed writer for the same target are removed by the next write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sitesync.errors import SiteUnavailableError, StorageError, storage_error_from_os
from sitesync.providers.base import (
    CAP_LOCAL_PATH,
    CommitCheck,
    Entry,
    Provider,
    ProviderConfig,
    ReadableStream,
)

TEMP_PREFIX = ".sitesync-"
TEMP_SUFFIX = ".part"
CHUNK = 1024 * 1024


class LocalDriveConfig(ProviderConfig):
    fsync: bool = True
    """fsync each file before it is renamed into place (turn off only for scratch storage)."""
    create_roots: bool = False
    """Create a root's base folder when it does not exist yet. Off for a network mount: a missing
    mount point must then make the site unavailable instead of filling the local disk."""


def temp_name_for(final: str) -> str:
    head, tail = os.path.split(final)
    return os.path.join(head, f"{TEMP_PREFIX}{tail}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


class LocalDriveProvider(Provider):
    name = "local_drive"
    Config = LocalDriveConfig
    capabilities = frozenset({CAP_LOCAL_PATH})
    description = "a mounted file system: local disk, NAS, SMB or NFS share"
    config: LocalDriveConfig

    def check(self) -> None:
        for base in self.roots.values():
            if os.path.isdir(base):
                continue
            if self.config.create_roots:
                try:
                    os.makedirs(base, exist_ok=True)
                    continue
                except OSError as exc:
                    raise SiteUnavailableError(
                        f"site {self.site}: cannot create root folder {base}: {exc.strerror}", site=self.site
                    ) from None
            raise SiteUnavailableError(
                f"site {self.site}: root folder {base} does not exist (not mounted?)", site=self.site
            )

    def local_path(self, path: str) -> str | None:
        return path

    def _error(self, exc: OSError, what: str, path: str) -> StorageError:
        """An OS error, or ``SiteUnavailableError`` when the root holding ``path`` is gone (unmounted)."""
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ESTALE, errno.ENODEV, errno.ENXIO):
            base = self._root_of(path)
            if base is not None and not os.path.isdir(base):
                return SiteUnavailableError(
                    f"site {self.site}: root folder {base} is not there (not mounted?)", site=self.site
                )
        return storage_error_from_os(exc, f"site {self.site}: {what} {path}", site=self.site)

    def stat(self, path: str) -> Entry | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as exc:
            raise self._error(exc, "stat", path) from None
        if not os.path.isfile(path):
            return None
        return Entry(path=path, size=st.st_size, mtime=st.st_mtime)

    def open_read(self, path: str) -> BinaryIO:
        try:
            return open(path, "rb")
        except IsADirectoryError:
            raise self._error(OSError(errno.EISDIR, "is a folder, not a file"), "read", path) from None
        except OSError as exc:
            raise self._error(exc, "read", path) from None

    def _remove_stale_temps(self, final: str) -> None:
        head, tail = os.path.split(final)
        prefix = f"{TEMP_PREFIX}{tail}."
        try:
            names = os.listdir(head)
        except OSError:
            return
        for name in names:
            if name.startswith(prefix) and name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(head, name))

    def _root_of(self, path: str) -> str | None:
        for base in self.roots.values():
            if path.startswith(base.rstrip("/\\") + os.sep):
                return base
        return None

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        parent = os.path.dirname(path)
        root = self._root_of(path)
        if root is not None and not self.config.create_roots and not os.path.isdir(root):
            # never recreate a missing mount point on the local disk
            raise SiteUnavailableError(
                f"site {self.site}: root folder {root} is not there (not mounted?)", site=self.site
            )
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise self._error(exc, "create folder", parent) from None
        self._remove_stale_temps(path)
        tmp = temp_name_for(path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise self._error(exc, "write", path) from None
        committed = False
        try:
            with os.fdopen(fd, "wb", buffering=0) as out:
                readinto = getattr(stream, "readinto", None)
                if readinto is not None:
                    buf = bytearray(CHUNK)
                    view = memoryview(buf)
                    while True:
                        n = readinto(buf)
                        if not n:
                            break
                        out.write(view[:n])
                else:
                    while True:
                        chunk = stream.read(CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                if self.config.fsync:
                    os.fsync(out.fileno())
            commit_check()
            os.replace(tmp, path)
            committed = True
        except OSError as exc:
            raise self._error(exc, "write", path) from None
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if self.config.fsync:
            _fsync_dir(parent)
        st = os.stat(path)
        return Entry(path=path, size=st.st_size, mtime=st.st_mtime)

    def delete(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._error(exc, "delete", path) from None
        _prune_empty_parents(os.path.dirname(path), list(self.roots.values()))

    def list(self, prefix: str) -> Iterator[Entry]:
        if not os.path.isdir(prefix):
            return
        for dirpath, dirnames, filenames in os.walk(prefix):
            dirnames.sort()
            for name in sorted(filenames):
                if is_temp_name(name):
                    continue
                full = os.path.join(dirpath, name)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                yield Entry(path=full, size=st.st_size, mtime=st.st_mtime)


def _fsync_dir(path: str) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _prune_empty_parents(folder: str, roots: list[str]) -> None:
    """Remove folders emptied by a delete, up to (not including) the site's root folders."""
    stop = {os.path.normpath(r) for r in roots}
    current = Path(folder)
    while True:
        norm = os.path.normpath(str(current))
        if norm in stop or current.parent == current or not any(norm.startswith(r + os.sep) for r in stop):
            return
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent


__all__ = ["LocalDriveConfig", "LocalDriveProvider", "StorageError", "is_temp_name"]
