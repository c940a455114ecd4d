"""``local_drive``: any storage mounted as a file system (local disk, NAS, SMB/NFS share).

Writes go to a hidden temporary file next to the target, are fsynced, checked by the caller's
``commit_check`` and only then renamed over the final name (``os.replace`` is atomic on one file
system): whatever appears under a final name, even after a crash, is complete and verified. The
folders holding new names are fsynced by ``flush()``, once per folder for a whole batch of files
(the engine flushes before it records transfers as done), so that a new name survives a crash. Temporary files of a crashed
writer for the same target are removed by the next write of that target (a folder is looked at once
per provider instance, not at every write: listing a folder of 10,000 frames at each of its 10,000
writes made a sequence quadratic).

``write_local`` (capability ``local_copy``) copies from another local file with the kernel's copy
path (``copy_file_range``, no round trip of the bytes through Python) and has the caller verify the
written temporary file, read back, before it gets its final name.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from sitesync.errors import SiteUnavailableError, StorageError, storage_error_from_os
from sitesync.hashing import buffer_size_for
from sitesync.providers.base import (
    CAP_LOCAL_COPY,
    CAP_LOCAL_PATH,
    CommitCheck,
    Entry,
    Provider,
    ProviderConfig,
    ReadableStream,
)

log = logging.getLogger("sitesync.local_drive")

TEMP_PREFIX = ".sitesync-"
TEMP_SUFFIX = ".part"
CHUNK = 1024 * 1024
KERNEL_COPY_CHUNK = 16 * 1024 * 1024  # per copy_file_range call: progress and cancellation in between
FOLDER_MEMO = 4096  # folders remembered as existing (and looked at for stale temporary files)
# copy_file_range cannot serve this pair of files: fall back to copying through a buffer
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EPERM}


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
    capabilities = frozenset({CAP_LOCAL_PATH, CAP_LOCAL_COPY})
    description = "a mounted file system: local disk, NAS, SMB or NFS share"
    config: LocalDriveConfig

    def __init_subclass__(cls, **kwargs: object) -> None:
        # a subclass that changes how files are written (a fault injector, a variant) gets its
        # write() used for every transfer, not the kernel copy path it did not adapt
        super().__init_subclass__(**kwargs)
        if "write_local" in cls.__dict__:
            cls.capabilities = cls.capabilities | {CAP_LOCAL_COPY}
        elif "write" in cls.__dict__:
            cls.capabilities = cls.capabilities - {CAP_LOCAL_COPY}

    def __init__(self, site: str, config: LocalDriveConfig, roots: dict[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self._lock = threading.Lock()
        # folder -> {target file name: stale temporary names seen when the folder was first used}
        self._folders: OrderedDict[str, dict[str, list[str]]] = OrderedDict()
        self._unsynced: set[str] = set()  # folders with new names (or new subfolders) not yet fsynced

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

    def _stale_temps(self, folder: str) -> dict[str, list[str]]:
        """Temporary files in ``folder`` (left by crashed writers, or being written right now by
        another), by the name of the file they were meant to become."""
        stale: dict[str, list[str]] = {}
        try:
            names = os.listdir(folder)
        except OSError:
            return stale
        for name in names:
            if is_temp_name(name):
                target = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)].rsplit(".", 1)[0]
                stale.setdefault(target, []).append(name)
        return stale

    def _remove_stale_temps(self, folder: str, name: str) -> None:
        with self._lock:
            temps = self._folders.get(folder, {}).pop(name, None)
        for temp in temps or ():
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, temp))

    def _prepare_folder(self, path: str, *, known: bool = True) -> str:
        """Make sure the parent folder of ``path`` exists (never recreating a missing mount point),
        remembering it, and remove stale temporary files of ``path``. Returns the folder."""
        parent = os.path.dirname(path)
        with self._lock:
            if known and parent in self._folders:
                self._folders.move_to_end(parent)
                ready = True
            else:
                ready = False
        if not ready:
            root = self._root_of(path)
            if root is not None and not self.config.create_roots and not os.path.isdir(root):
                raise SiteUnavailableError(
                    f"site {self.site}: root folder {root} is not there (not mounted?)", site=self.site
                )
            created = _missing_folders(parent)
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise self._error(exc, "create folder", parent) from None
            if created and self.config.fsync:
                with self._lock:
                    self._unsynced.update(os.path.dirname(folder) for folder in created)
            stale = self._stale_temps(parent)
            with self._lock:
                self._folders[parent] = stale
                while len(self._folders) > FOLDER_MEMO:
                    self._folders.popitem(last=False)
        self._remove_stale_temps(parent, os.path.basename(path))
        return parent

    def _forget_folder(self, folder: str) -> None:
        with self._lock:
            self._folders.pop(folder, None)

    def _create_temp(self, path: str, flags: int) -> tuple[str, str, int]:
        """(folder, temporary name, open fd) for a new write of ``path``."""
        parent = self._prepare_folder(path)
        tmp = temp_name_for(path)
        try:
            return parent, tmp, os.open(tmp, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # the folder was removed since we last wrote into it
            self._forget_folder(parent)
            parent = self._prepare_folder(path, known=False)
        except OSError as exc:
            raise self._error(exc, "write", path) from None
        try:
            return parent, tmp, os.open(tmp, flags | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            raise self._error(exc, "write", path) from None

    def _commit(self, fd: int, tmp: str, path: str, parent: str, check: Callable[[], None]) -> Entry:
        """fsync the temporary file, let ``check`` accept it, rename it into place, fsync the folder.
        On any failure the temporary file is removed and nothing appears under ``path``."""
        committed = False
        try:
            try:
                if self.config.fsync:
                    os.fsync(fd)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            check()
            os.replace(tmp, path)
            committed = True
        except OSError as exc:
            raise self._error(exc, "write", path) from None
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        if self.config.fsync:
            with self._lock:
                self._unsynced.add(parent)
        try:
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            raise self._error(exc, "stat", path) from None
        return Entry(path=path, size=size, mtime=mtime)

    def flush(self) -> None:
        with self._lock:
            folders, self._unsynced = self._unsynced, set()
        for folder in sorted(folders, key=len, reverse=True):  # deepest first: children before parents
            _fsync_dir(folder)

    def _root_of(self, path: str) -> str | None:
        for base in self.roots.values():
            if path.startswith(base.rstrip("/\\") + os.sep):
                return base
        return None

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        parent, tmp, fd = self._create_temp(path, os.O_WRONLY)
        try:
            readinto = getattr(stream, "readinto", None)
            if readinto is not None:
                buf = bytearray(buffer_size_for(size))
                view = memoryview(buf)
                while True:
                    n = readinto(buf)
                    if not n:
                        break
                    _write_all(fd, view[:n])
            else:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    _write_all(fd, chunk)
        except BaseException as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self._error(exc, "write", path) from None
            raise
        return self._commit(fd, tmp, path, parent, commit_check)

    def write_local(
        self,
        path: str,
        source: str,
        size: int,
        verify: Callable[[BinaryIO], None],
        on_bytes: Callable[[int], None] | None = None,
    ) -> Entry:
        try:
            src = os.open(source, os.O_RDONLY)
        except IsADirectoryError:
            raise self._error(OSError(errno.EISDIR, "is a folder, not a file"), "read", source) from None
        except OSError as exc:
            raise self._error(exc, "read", source) from None
        try:
            parent, tmp, fd = self._create_temp(path, os.O_RDWR)
            try:
                _copy_fd(src, fd, size, on_bytes)
                os.lseek(fd, 0, os.SEEK_SET)
                with open(fd, "rb", buffering=0, closefd=False) as stored:  # what the temporary file holds
                    verify(stored)
            except BaseException as exc:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                if isinstance(exc, OSError):
                    raise self._error(exc, "copy to", path) from None
                raise
        finally:
            os.close(src)
        return self._commit(fd, tmp, path, parent, _accept)

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


def _accept() -> None:
    """The commit check of ``write_local``: its content was verified before the fsync."""


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _copy_fd(src: int, dst: int, size: int, on_bytes: Callable[[int], None] | None) -> None:
    """Copy ``src`` from its start to its end into ``dst``: in the kernel where it can, else through
    a buffer. ``on_bytes`` gets each chunk's size (it may raise to cancel)."""
    kernel = hasattr(os, "copy_file_range")
    while kernel:
        try:
            n = os.copy_file_range(src, dst, KERNEL_COPY_CHUNK)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            kernel = False
            break
        if not n:
            return
        if on_bytes is not None:
            on_bytes(n)
    buf = bytearray(buffer_size_for(size))
    view = memoryview(buf)
    while True:
        n = os.readv(src, [buf])
        if not n:
            return
        _write_all(dst, view[:n])
        if on_bytes is not None:
            on_bytes(n)


def _missing_folders(folder: str) -> list[str]:
    """``folder`` and those of its parents that do not exist yet (what makedirs will create)."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


def _fsync_dir(path: str) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a folder; a failing disk shows elsewhere too
        log.debug("fsync of folder %s failed: %s", path, exc)
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
