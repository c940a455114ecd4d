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

Staged writes (``write_local(staged=True)``, the engine's transfers; option ``durability = "batch"``):
on a file system whose ``syncfs`` can be trusted (``fileio.syncfs_trusted``: a local disk, Linux 5.8
or later) the verified temporary file is not fsynced and keeps its temporary name; ``flush()`` makes
the whole batch durable with one ``syncfs``, renames each file, and makes the new names durable with
a second ``syncfs``. A fsync per file cost most of a small file's transfer time (a journal commit
each; 1-3 ms against 30-40 µs per file for the batch on this project's test machine). The order is
the same as with a fsync per file: nothing gets its final name before its content is verified and on
disk, and the engine records it only after ``flush()``. A crash before the renames leaves only
temporary files (removed by later writes and sweeps); after them, complete verified copies that the
next transfer finds and adopts. ``syncfs`` reports a write-back error on the file system since the
descriptor it is called on was opened (or last synced): each file system's descriptor is opened
before the first staged write to it, and a failed ``syncfs`` fails every staged copy whose write
began before it, in this batch or a later one.
A staged copy waits longer for its rename than a fsynced one, so what is under the final name is
noted when the copy is staged: the rename is refused (``TargetOccupiedError``) if a file appeared
there meanwhile (``renameat2(RENAME_NOREPLACE)``, atomic) or the one there was replaced; a file
sitesync did not write is never overwritten.

Every operation stays beneath its root (``beneath.py``): paths are opened relative to the root
folder with ``RESOLVE_BENEATH`` rules (a symbolic link is followed only while it stays inside the
root), and names are created, renamed and unlinked inside an opened folder, so a link planted in a
site never makes sitesync read, write or delete (or prune folders) outside it. A root folder that is
missing (an unmounted share) makes the site unavailable: its files are unknown, never absent.
Entries carry the file's inode as ``ref``: with size and modification time it is the fingerprint
of a stored copy (see ``sitesync.identity.content``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat as stat_mod
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Literal

from sitesync.errors import (
    PathEscapeError,
    SiteUnavailableError,
    StorageError,
    TargetOccupiedError,
    storage_error_from_os,
)
from sitesync.hashing import buffer_size_for
from sitesync.providers.base import (
    LEFTOVER_AGE_SECONDS,
    CommitCheck,
    Entry,
    Provider,
    ProviderConfig,
    ReadableStream,
    StatEntry,
    Usage,
)
from sitesync.providers.beneath import O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, O_PATH, Root
from sitesync.providers.fileio import copy_fd, fsync_dir, rename_noreplace, syncfs, syncfs_trusted, write_all
from sitesync.providers.local_walk import stat_nofollow, walk_fd
from sitesync.providers.openfiles import open_for_writing

log = logging.getLogger("sitesync.local_drive")

TEMP_PREFIX = ".sitesync-"
TEMP_SUFFIX = ".part"
CHUNK = 1024 * 1024
FOLDER_MEMO = 4096  # folders remembered as existing (and looked at for stale temporary files)


class LocalDriveConfig(ProviderConfig):
    fsync: bool = True
    """fsync each file before it is renamed into place (turn off only for scratch storage)."""
    create_roots: bool = False
    """Create a root's base folder when it does not exist yet. Off for a network mount: a missing
    mount point must then make the site unavailable instead of filling the local disk."""
    durability: Literal["batch", "fsync"] = "batch"
    """How transfers make their copies durable before the final rename. `batch`: on a local disk
    (ext4, xfs, btrfs, f2fs; Linux 5.8 or later) a batch of verified copies is made durable with one
    `syncfs` of the file system, then renamed; elsewhere (NFS, SMB, FUSE), and with `fsync`, each
    file is fsynced before its rename. `syncfs` also writes out other programs' unsaved data on that
    file system: choose `fsync` for a disk shared with heavy writers."""


@dataclass
class _SyncHandle:
    """One file system's part in the staged writes: a folder descriptor opened before the first
    staged write to it, the number of ``syncfs`` calls made through it, the number of the last one
    that failed, and the staged writes still running."""

    fd: int
    syncs: int = 0
    last_failed: int = 0
    writing: int = 0
    error: OSError | None = None


@dataclass(frozen=True)
class _Staged:
    """A verified copy under its temporary name, waiting for ``flush()``."""

    root: Root
    folder_rel: str
    folder: str
    tmp: str
    name: str
    path: str
    device: int
    began: int  # the file system's ``syncs`` when its write began
    before: tuple[int, int, int] | None  # what was under the final name when it was staged (_name_state)


def temp_name_for(final: str) -> str:
    head, tail = os.path.split(final)
    return os.path.join(head, f"{TEMP_PREFIX}{tail}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


class LocalDriveProvider(Provider):
    name = "local_drive"
    Config = LocalDriveConfig
    description = "a mounted file system: local disk, NAS, SMB or NFS share"
    config: LocalDriveConfig

    def __init__(self, site: str, config: LocalDriveConfig, roots: dict[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self._lock = threading.Lock()
        # longest base first: a path belongs to the deepest root that holds it
        self._roots = [Root(base) for base in sorted(set(self.roots.values()), key=len, reverse=True)]
        # folder -> {target file name: stale temporary names seen when the folder was first used}
        self._folders: OrderedDict[str, dict[str, list[str]]] = OrderedDict()
        self._unsynced: set[str] = set()  # folders with new names (or new subfolders) not yet fsynced
        self._staged: list[_Staged] = []  # verified copies waiting for flush() to commit them
        self._sync_handles: dict[int, _SyncHandle] = {}  # st_dev -> its part in the staged writes
        self._no_syncfs: set[int] = set()  # devices whose syncfs is not trusted (fsync per file there)

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

    # ------------------------------------------------------------------ paths beneath the roots

    def _where(self, path: str) -> tuple[Root, str]:
        """The root holding ``path`` and the part below it. Every operation acts on that part below
        that root's folder, never following a link out of it (``beneath.py``)."""
        for root in self._roots:
            rel = root.relative(path)
            if rel is not None:
                return root, rel
        raise PathEscapeError(f"site {self.site}: {path} is not below any root of the site; nothing was done")

    def _unmounted(self, root: Root) -> SiteUnavailableError | None:
        if os.path.isdir(root.base):
            return None
        return SiteUnavailableError(
            f"site {self.site}: root folder {root.base} is not there (not mounted?)", site=self.site
        )

    def usage(self) -> Usage | None:
        """The file systems holding the roots (each counted once, ``statvfs``): the space an
        unprivileged writer may use, and the total size."""
        seen: dict[int, Usage] = {}
        for base in self.roots.values():
            if not os.path.isdir(base):
                raise SiteUnavailableError(
                    f"site {self.site}: root folder {base} is not there (not mounted?)", site=self.site
                )
            try:
                device = os.stat(base).st_dev
                if device in seen:
                    continue
                st = os.statvfs(base)
            except OSError as exc:
                raise self._error(exc, "read the free space of", base) from None
            seen[device] = Usage(free=st.f_bavail * st.f_frsize, total=st.f_blocks * st.f_frsize)
        if not seen:
            return None
        return Usage(free=sum(u.free or 0 for u in seen.values()), total=sum(u.total or 0 for u in seen.values()))

    def _error(self, exc: OSError, what: str, path: str) -> StorageError:
        """An OS error, or ``SiteUnavailableError`` when the root holding ``path`` is gone (unmounted)."""
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ESTALE, errno.ENODEV, errno.ENXIO):
            for root in self._roots:
                if root.relative(path) is not None and (gone := self._unmounted(root)) is not None:
                    return gone
        return storage_error_from_os(exc, f"site {self.site}: {what} {path}", site=self.site)

    def _open(self, path: str, flags: int, what: str) -> int:
        root, rel = self._where(path)
        if not rel:
            raise self._error(OSError(errno.EISDIR, "is a root folder, not a file"), what, path)
        try:
            return root.open(rel, flags)
        except OSError as exc:
            raise self._error(exc, what, path) from None

    def stat(self, path: str) -> Entry | None:
        root, rel = self._where(path)
        if not rel:
            return None
        try:
            fd = root.open(rel, O_PATH or os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            if not self.config.create_roots and (gone := self._unmounted(root)) is not None:
                raise gone from None  # unknown, never absent
            return None
        except OSError as exc:
            raise self._error(exc, "stat", path) from None
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        return _entry(path, st)

    def stat_many(self, paths: list[str]) -> list[Entry | None]:
        """``stat`` of many files, each folder opened beneath its root once (a sequence of frames is
        one folder): one ``fstatat`` per plain file; links take the full ``stat``."""
        out: list[Entry | None] = [None] * len(paths)
        by_folder: dict[tuple[int, str], list[int]] = {}
        for i, path in enumerate(paths):
            root, rel = self._where(path)
            folder_rel, _, _name = rel.rpartition("/")
            by_folder.setdefault((self._roots.index(root), folder_rel), []).append(i)
        for (root_index, folder_rel), indexes in by_folder.items():
            try:
                folder = self._roots[root_index].folder(folder_rel)
                folder_fd = folder.__enter__()
            except OSError:
                for i in indexes:
                    out[i] = self.stat(paths[i])
                continue
            try:
                for i in indexes:
                    name = paths[i].rsplit(os.sep, 1)[-1]
                    try:
                        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    if stat_mod.S_ISLNK(st.st_mode):
                        out[i] = self.stat(paths[i])
                    elif stat_mod.S_ISREG(st.st_mode):
                        out[i] = _entry(paths[i], st)
            finally:
                folder.__exit__(None, None, None)
        return out

    def open_read(self, path: str) -> BinaryIO:
        fd = self._open(path, os.O_RDONLY, "read")
        if stat_mod.S_ISDIR(os.fstat(fd).st_mode):
            os.close(fd)
            raise self._error(OSError(errno.EISDIR, "is a folder, not a file"), "read", path)
        return os.fdopen(fd, "rb")

    def local_path(self, path: str) -> str | None:
        """The file's real path, its links resolved beneath the root at this moment (what a kernel
        copy then opens without following links)."""
        fd = self._open(path, O_PATH or os.O_RDONLY, "read")
        try:
            real = os.readlink(f"/proc/self/fd/{fd}") if os.path.isdir("/proc/self/fd") else None
        except OSError:
            real = None
        finally:
            os.close(fd)
        return real or path

    # ------------------------------------------------------------------ folders

    @contextlib.contextmanager
    def _parent(self, path: str) -> Iterator[tuple[int, str, str]]:
        """The folder that holds ``path``, opened beneath its root and created if missing (never a
        missing mount point: the root itself must exist unless ``create_roots``): (folder
        descriptor, folder path, file name). Stale temporary files of ``path`` are removed."""
        root, rel = self._where(path)
        if not rel:
            raise self._error(OSError(errno.EISDIR, "is a root folder, not a file"), "write", path)
        folder_rel, _, name = rel.rpartition("/")
        folder = os.path.dirname(path)
        if not os.path.isdir(root.base):
            if not self.config.create_roots:
                raise self._unmounted(root) or SiteUnavailableError(f"site {self.site}: no root", site=self.site)
            try:
                os.makedirs(root.base, exist_ok=True)
            except OSError as exc:
                raise self._error(exc, "create folder", root.base) from None
        created = False
        try:
            try:
                fd = root.open(folder_rel, os.O_RDONLY | O_DIRECTORY) if folder_rel else root.open_root()
            except FileNotFoundError:
                self._forget_folder(folder)
                fd = root.makedirs(folder_rel)
                created = True
        except OSError as exc:
            raise self._error(exc, "create folder", folder) from None
        try:
            if created and self.config.fsync:
                # the new folders' names live in their parents: fsync from the root down to here
                parts = folder_rel.split("/")
                with self._lock:
                    self._unsynced.update(os.path.join(root.base, *parts[:i]) for i in range(len(parts)))
            self._remove_stale_temps(fd, folder, name)
            yield fd, folder, name
        finally:
            os.close(fd)

    def _remove_stale_temps(self, folder_fd: int, folder: str, name: str) -> None:
        """Temporary files of ``name`` left in the folder by a crashed writer are removed; the
        folder is listed once per provider instance (remembered), not at every write."""
        with self._lock:
            known = self._folders.get(folder)
            if known is not None:
                self._folders.move_to_end(folder)
                temps = known.pop(name, None)
        if known is None:
            stale = _stale_temps(folder_fd)
            temps = stale.pop(name, None)
            with self._lock:
                self._folders[folder] = stale
                while len(self._folders) > FOLDER_MEMO:
                    self._folders.popitem(last=False)
        for temp in temps or ():
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=folder_fd)

    def _forget_folder(self, folder: str) -> None:
        with self._lock:
            self._folders.pop(folder, None)

    # ------------------------------------------------------------------ writing

    def _commit(
        self, folder_fd: int, fd: int, tmp: str, name: str, path: str, folder: str, check: CommitCheck
    ) -> Entry:
        """fsync the temporary file, let ``check`` accept it, rename it into place (the rename
        replaces a name in the folder: a link there is replaced, never followed). On any failure
        the temporary file is removed and nothing appears under ``path``."""
        committed = False
        try:
            try:
                if self.config.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            check()
            os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
            committed = True
        except OSError as exc:
            raise self._error(exc, "write", path) from None
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=folder_fd)
        if self.config.fsync:
            with self._lock:
                self._unsynced.add(folder)
        try:
            st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
        except OSError as exc:
            raise self._error(exc, "stat", path) from None
        return _entry(path, st)

    def _temp(self, folder_fd: int, path: str, flags: int) -> tuple[str, int]:
        tmp = os.path.basename(temp_name_for(path))
        try:
            return tmp, os.open(tmp, flags | os.O_CREAT | os.O_EXCL | O_CLOEXEC, 0o644, dir_fd=folder_fd)
        except OSError as exc:
            raise self._error(exc, "write", path) from None

    def _discard(self, exc: BaseException, fd: int, tmp: str, folder_fd: int, what: str, path: str) -> BaseException:
        """A write failed before its commit: close and remove the temporary file; the error to
        raise (an OS error translated, anything else as it was: cancellation, a refused check)."""
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        return self._error(exc, what, path) if isinstance(exc, OSError) else exc

    def flush(self) -> dict[str, Exception]:
        with self._lock:  # the folders too before any syncfs: one made later is not covered by it
            staged, self._staged = self._staged, []
            folders, self._unsynced = self._unsynced, set()
            handles = {s.device: self._sync_handles[s.device] for s in staged}
        failures: dict[str, Exception] = {}
        if staged:
            for handle in handles.values():  # the batch's content, durable before any rename
                self._syncfs(handle)
            renamed = self._rename_staged([s for s in staged if self._durable(s, handles, failures)], failures)
            for device in {s.device for s in renamed}:  # the new names, durable before they are recorded
                handle = handles[device]
                if not self._syncfs(handle):
                    for s in renamed:
                        if s.device == device:
                            failures[s.path] = self._durability_error(handle, s.path)
        with self._lock:
            for device, handle in list(self._sync_handles.items()):
                if handle.writing == 0 and not any(s.device == device for s in self._staged):
                    del self._sync_handles[device]
                    os.close(handle.fd)
        synced = {d for d, h in handles.items() if h.last_failed != h.syncs}
        for folder in sorted(folders, key=len, reverse=True):  # deepest first: children before parents
            if synced and _device_of(folder) in synced:
                continue  # its new names were made durable by a syncfs of this flush
            fsync_dir(folder)
        return failures

    def _syncfs(self, handle: _SyncHandle) -> bool:
        try:
            syncfs(handle.fd)
            error = None
        except OSError as exc:
            error = exc
            log.warning("site %s: syncfs failed, the copies written meanwhile are not durable: %s", self.site, exc)
        with self._lock:
            handle.syncs += 1
            if error is not None:
                handle.last_failed, handle.error = handle.syncs, error
        return error is None

    def _durable(self, staged: _Staged, handles: dict[int, _SyncHandle], failures: dict[str, Exception]) -> bool:
        """Whether no syncfs failed on the copy's file system since its write began; if one did, the
        copy is discarded (its bytes may not be on disk)."""
        handle = handles[staged.device]
        if handle.last_failed <= staged.began:
            return True
        failures[staged.path] = self._durability_error(handle, staged.path)
        self._unlink_staged([staged])
        return False

    def _durability_error(self, handle: _SyncHandle, path: str) -> StorageError:
        exc = handle.error or OSError(errno.EIO, "write-back failed")
        return self._error(exc, "make durable", path)

    def _rename_staged(self, staged: list[_Staged], failures: dict[str, Exception]) -> list[_Staged]:
        """Give each staged copy its final name (inside its folder, opened beneath its root again:
        a folder swapped for a link out of the root meanwhile is refused); returns those renamed."""
        by_folder: dict[tuple[int, str], list[_Staged]] = {}
        for s in staged:
            by_folder.setdefault((id(s.root), s.folder_rel), []).append(s)
        renamed = []
        for items in by_folder.values():
            root, folder_rel = items[0].root, items[0].folder_rel
            try:
                fd = root.open(folder_rel, os.O_RDONLY | O_DIRECTORY) if folder_rel else root.open_root()
            except (OSError, PathEscapeError) as exc:
                for s in items:
                    failures[s.path] = exc if isinstance(exc, PathEscapeError) else self._error(exc, "write", s.path)
                continue
            try:
                for s in items:
                    try:
                        self._rename_unless_changed(fd, s)
                    except TargetOccupiedError as exc:
                        failures[s.path] = exc
                        with contextlib.suppress(OSError):
                            os.unlink(s.tmp, dir_fd=fd)
                        continue
                    except OSError as exc:
                        failures[s.path] = self._error(exc, "write", s.path)
                        with contextlib.suppress(OSError):
                            os.unlink(s.tmp, dir_fd=fd)
                        continue
                    renamed.append(s)
            finally:
                os.close(fd)
        return renamed

    def _rename_unless_changed(self, folder_fd: int, staged: _Staged) -> None:
        """Rename a staged copy over its final name, unless what is there changed since the copy was
        staged (the transfer looked at the target before it wrote): a file that appeared meanwhile,
        or one replaced, is someone else's and is never overwritten (``TargetOccupiedError``)."""
        if staged.before is None:
            try:
                if rename_noreplace(staged.tmp, staged.name, folder_fd):
                    return
            except FileExistsError:
                raise self._appeared(staged.path) from None
        if _name_state(folder_fd, staged.name) != staged.before:
            raise self._appeared(staged.path)
        os.replace(staged.tmp, staged.name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)

    def _appeared(self, path: str) -> TargetOccupiedError:
        return TargetOccupiedError(
            f"a different file appeared at {path} on site {self.site} while the copy was being made durable; "
            f"sitesync did not write it and will not replace it: move it away, or run `sitesync validate {self.site}`",
            site=self.site,
        )

    def _unlink_staged(self, staged: list[_Staged]) -> None:
        for s in staged:
            with contextlib.suppress(OSError, PathEscapeError), s.root.folder(s.folder_rel) as fd:
                os.unlink(s.tmp, dir_fd=fd)

    def _stage_begin(self, folder_fd: int) -> tuple[_SyncHandle, int, int] | None:
        """Join the staged writes of the folder's file system (its handle opened now, before this
        write, if it is the first): (handle, its syncs so far, device); None where syncfs is not
        trusted (the write is then fsynced and renamed on its own)."""
        device = os.fstat(folder_fd).st_dev
        with self._lock:
            if device in self._no_syncfs:
                return None
            handle = self._sync_handles.get(device)
            if handle is None:
                if not syncfs_trusted(device):
                    self._no_syncfs.add(device)
                    return None
                handle = self._sync_handles[device] = _SyncHandle(os.dup(folder_fd))
            handle.writing += 1
            return handle, handle.syncs, device

    def close(self) -> None:
        with self._lock:
            for device, handle in list(self._sync_handles.items()):
                if handle.writing == 0 and not any(s.device == device for s in self._staged):
                    del self._sync_handles[device]
                    os.close(handle.fd)

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        with self._parent(path) as (folder_fd, folder, name):
            tmp, fd = self._temp(folder_fd, path, os.O_WRONLY)
            try:
                readinto = getattr(stream, "readinto", None)
                if readinto is not None:
                    buf = bytearray(buffer_size_for(size))
                    view = memoryview(buf)
                    while True:
                        n = readinto(buf)
                        if not n:
                            break
                        write_all(fd, view[:n])
                else:
                    while True:
                        chunk = stream.read(CHUNK)
                        if not chunk:
                            break
                        write_all(fd, chunk)
            except BaseException as exc:
                raise self._discard(exc, fd, tmp, folder_fd, "write", path) from None
            return self._commit(folder_fd, fd, tmp, name, path, folder, commit_check)

    def write_local(
        self,
        path: str,
        source: str,
        size: int,
        verify: Callable[[BinaryIO], None],
        on_bytes: Callable[[int], None] | None = None,
        *,
        staged: bool = False,
    ) -> Entry:
        try:
            # the source's real path (see local_path): a link swapped in meanwhile is not followed
            src = os.open(source, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        except IsADirectoryError:
            raise self._error(OSError(errno.EISDIR, "is a folder, not a file"), "read", source) from None
        except OSError as exc:
            raise self._error(exc, "read", source) from None
        try:
            with self._parent(path) as (folder_fd, folder, name):
                batch = None
                if staged and self.config.fsync and self.config.durability == "batch":
                    batch = self._stage_begin(folder_fd)
                try:
                    tmp, fd = self._temp(folder_fd, path, os.O_RDWR)
                    try:
                        copy_fd(src, fd, size, on_bytes)
                        os.lseek(fd, 0, os.SEEK_SET)
                        with open(fd, "rb", buffering=0, closefd=False) as stored:  # what the temporary file holds
                            verify(stored)
                        if batch is not None:
                            st = os.fstat(fd)
                    except BaseException as exc:
                        raise self._discard(exc, fd, tmp, folder_fd, "copy to", path) from None
                    if batch is None:
                        return self._commit(folder_fd, fd, tmp, name, path, folder, _accept)
                    os.close(fd)
                    _handle, began, device = batch
                    root, rel = self._where(path)
                    before = _name_state(folder_fd, name)
                    staged_copy = _Staged(root, rel.rpartition("/")[0], folder, tmp, name, path, device, began, before)
                    with self._lock:
                        self._staged.append(staged_copy)
                    return _entry(path, st)  # rename keeps the inode and the modification time
                finally:
                    if batch is not None:
                        with self._lock:
                            batch[0].writing -= 1
        finally:
            os.close(src)

    # ------------------------------------------------------------------ site markers above the roots

    def folders_above(self, base: str) -> list[str]:
        """The real folders enclosing a root (its links resolved: a root that is a link into another
        site's storage is inside that storage), nearest first."""
        real = os.path.realpath(base)
        out: list[str] = []
        while True:
            parent = os.path.dirname(real)
            if parent == real:
                return out
            out.append(parent)
            real = parent

    def read_small_above(self, path: str, limit: int) -> bytes | None:
        """A marker in a folder above the roots: read-only, never following a link in its name."""
        try:
            fd = os.open(path, os.O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None
            raise self._error(exc, "read", path) from None
        try:
            if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
                return None
            with os.fdopen(os.dup(fd), "rb") as fh:
                return fh.read(limit + 1)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ deleting and listing

    def delete(self, path: str) -> None:
        root, rel = self._where(path)
        if not rel:
            raise self._error(OSError(errno.EISDIR, "is a root folder, not a file"), "delete", path)
        folder_rel, _, name = rel.rpartition("/")
        try:
            with root.folder(folder_rel) as folder_fd:
                # unlink removes the name in that folder: a link is removed, its target never touched
                os.unlink(name, dir_fd=folder_fd)
        except (FileNotFoundError, NotADirectoryError):
            if (gone := self._unmounted(root)) is not None:
                raise gone from None
            return
        except OSError as exc:
            raise self._error(exc, "delete", path) from None
        self._prune(root, folder_rel)

    def _prune(self, root: Root, folder_rel: str) -> None:
        """Remove folders emptied by a delete, up to (not including) the root; a linked folder is
        never followed (rmdir of a link fails) and nothing above the root is touched."""
        while folder_rel:
            parent_rel, _, name = folder_rel.rpartition("/")
            try:
                with root.folder(parent_rel) as parent_fd:
                    os.rmdir(name, dir_fd=parent_fd)
            except OSError:
                return
            self._forget_folder(os.path.join(root.base, *folder_rel.split("/")))
            folder_rel = parent_rel

    def sweep_leftovers(self, prefix: str, older_than: float = LEFTOVER_AGE_SECONDS) -> list[str]:
        """Temporary files below ``prefix`` not modified for ``older_than`` seconds (a live write
        touches its own all the time). The first write to a folder removes the temporary files of
        the name it writes already; this finds the rest (fsck, the worker's sweep)."""
        limit = time.time() - older_than
        removed = []
        for dirpath, _dirnames, filenames in os.walk(prefix):
            for name in filenames:
                if not is_temp_name(name):
                    continue
                path = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    if os.stat(path).st_mtime <= limit:
                        os.unlink(path)
                        removed.append(path)
        if removed:
            log.info("site %s: removed %d leftover temporary files below %s", self.site, len(removed), prefix)
        return removed

    def walk_stats(self, base: str, prune: Callable[[str], bool] | None = None) -> Iterator[StatEntry]:
        """Every file below ``base`` with its exact facts, one ``fstatat`` per file, on folder
        descriptors beneath the root; links reported, never followed (``local_walk.py``). A root
        that is not there raises ``SiteUnavailableError``; a missing ``base`` below it has no files."""
        root, rel = self._where(base)
        try:
            top = root.folder(rel)
            top_fd = top.__enter__()
        except (FileNotFoundError, NotADirectoryError):
            if not self.config.create_roots and (gone := self._unmounted(root)) is not None:
                raise gone from None
            if not os.path.isdir(root.base):
                raise SiteUnavailableError(
                    f"site {self.site}: root folder {root.base} is not there (not mounted?)", site=self.site
                ) from None
            return
        except OSError as exc:
            raise self._error(exc, "list", base) from None
        try:
            yield from walk_fd(top_fd, prune, is_temp_name, base)
        finally:
            top.__exit__(None, None, None)

    def stat_exact(self, path: str) -> StatEntry | None:
        """Exact facts of ``path`` as ``walk_stats`` sees them: no link followed on the way or at the
        end (a link is reported as one; a file reached only through a linked folder is None)."""
        root, rel = self._where(path)
        if not rel:
            return None
        try:
            with root.opened() as root_fd:
                return stat_nofollow(root_fd, rel, path)
        except (FileNotFoundError, NotADirectoryError):
            if not self.config.create_roots and (gone := self._unmounted(root)) is not None:
                raise gone from None
            raise SiteUnavailableError(
                f"site {self.site}: root folder {root.base} is not there (not mounted?)", site=self.site
            ) from None
        except OSError as exc:
            raise self._error(exc, "stat", path) from None

    def open_for_writing(self, paths: list[str]) -> set[str]:
        """The paths among ``paths`` another process of this machine holds open for writing
        (Linux ``/proc``, ``openfiles.py``; each path resolved beneath its root first)."""
        real: dict[str, str] = {}
        for path in paths:
            try:
                resolved = self.local_path(path)
            except (StorageError, OSError):
                continue
            if resolved:
                real[resolved] = path
        return {real[r] for r in open_for_writing(real)}

    def list(self, prefix: str) -> Iterator[Entry]:
        root, rel = self._where(prefix)
        try:
            top = root.folder(rel)
            top_fd = top.__enter__()
        except (FileNotFoundError, NotADirectoryError):
            if not self.config.create_roots and (gone := self._unmounted(root)) is not None:
                raise gone from None
            return
        except OSError as exc:
            raise self._error(exc, "list", prefix) from None
        try:
            base = prefix.rstrip("/\\")
            for dirpath, dirnames, filenames, dir_fd in os.fwalk(".", dir_fd=top_fd):
                dirnames.sort()  # linked folders are not entered (fwalk never follows them)
                for name in sorted(filenames):
                    if is_temp_name(name):
                        continue
                    sub = os.path.normpath(os.path.join(dirpath, name))
                    entry = self._listed(root, rel, sub, name, dir_fd, os.path.join(base, sub))
                    if entry is not None:
                        yield entry
        finally:
            top.__exit__(None, None, None)

    def _listed(self, root: Root, rel: str, sub: str, name: str, dir_fd: int, path: str) -> Entry | None:
        """A listed name as an entry: a regular file, or a link resolving to one beneath the root."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat_mod.S_ISLNK(st.st_mode):
                fd = root.open("/".join(p for p in (rel, sub.replace(os.sep, "/")) if p), O_PATH or os.O_RDONLY)
                try:
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
        except (OSError, PathEscapeError):
            return None  # gone meanwhile, or a link out of the root: not a file of this site
        return _entry(path, st) if stat_mod.S_ISREG(st.st_mode) else None


def _entry(path: str, st: os.stat_result) -> Entry:
    # the inode is the file's identity on its file system: an atomic replace gives a new one
    return Entry(path=path, size=st.st_size, mtime=st.st_mtime, ref=f"ino:{st.st_ino}")


def _name_state(folder_fd: int, name: str) -> tuple[int, int, int] | None:
    """What is under ``name`` in the folder (a link is not followed): None for nothing, else its
    inode, size and modification time, to tell whether it changed."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _device_of(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def _stale_temps(folder_fd: int) -> dict[str, list[str]]:
    """Temporary files in a folder (left by crashed writers, or being written right now by
    another), by the name of the file they were meant to become."""
    stale: dict[str, list[str]] = {}
    try:
        names = os.listdir(folder_fd)
    except OSError:
        return stale
    for name in names:
        if is_temp_name(name):
            target = name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)].rsplit(".", 1)[0]
            stale.setdefault(target, []).append(name)
    return stale


def _accept() -> None:
    """The commit check of ``write_local``: its content was verified before the fsync."""


__all__ = ["LocalDriveConfig", "LocalDriveProvider", "StorageError", "is_temp_name"]
