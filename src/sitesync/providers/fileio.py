"""Low-level file copying for file-system providers: writing a buffer whole, copying one open file
into another in the kernel (``copy_file_range``) with a buffered fallback, fsyncing a folder, and
``syncfs`` (making a whole file system durable at once) where it can be trusted."""

from __future__ import annotations

import ctypes
import errno
import functools
import logging
import os
import platform
from collections.abc import Callable

from sitesync.hashing import buffer_size_for

log = logging.getLogger("sitesync.local_drive")

KERNEL_COPY_CHUNK = 16 * 1024 * 1024  # per copy_file_range call: progress and cancellation in between
# copy_file_range cannot serve this pair of files: fall back to copying through a buffer
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF, errno.EPERM}


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def copy_fd(src: int, dst: int, size: int, on_bytes: Callable[[int], None] | None) -> None:
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
        write_all(dst, view[:n])
        if on_bytes is not None:
            on_bytes(n)


def fsync_dir(path: str) -> None:
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


# File systems on a local block device whose syncfs writes every dirty page and commits the journal,
# and reports write-back errors (Linux >= 5.8). Not network or FUSE file systems: their syncfs may
# not reach the server (SMB, NFS) or was a no-op (FUSE before 5.15); those keep an fsync per file.
SYNCFS_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs"})
SYNCFS_REPORTS_ERRORS = (5, 8)  # the kernel that made syncfs return write-back errors


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    if platform.system() != "Linux":
        return None
    try:
        release = tuple(int(x) for x in platform.release().split("-")[0].split(".")[:2])
        if release < SYNCFS_REPORTS_ERRORS:
            return None
        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, ValueError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def file_system_type(device: int) -> str | None:
    """The type of the mounted file system with this ``st_dev`` (from /proc/self/mountinfo)."""
    wanted = f"{os.major(device)}:{os.minor(device)}"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                fields = line.split()
                if len(fields) > 7 and fields[2] == wanted and "-" in fields:
                    return fields[fields.index("-") + 1]
    except OSError:
        return None
    return None


def syncfs_trusted(device: int) -> bool:
    """Whether ``syncfs`` on this file system makes every write durable and reports failures (looked
    up each time: a device number can come back for another file system after an unmount)."""
    return _libc_syncfs() is not None and file_system_type(device) in SYNCFS_FILE_SYSTEMS


def syncfs(fd: int) -> None:
    """Write out every dirty page of the file system holding ``fd`` and commit its journal. Raises
    ``OSError`` for a write-back error on that file system since ``fd`` was opened or last synced."""
    fn = _libc_syncfs()
    if fn is None:
        raise OSError(errno.ENOSYS, "syncfs is not available here")
    if fn(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


RENAME_NOREPLACE = 1  # linux/fs.h


@functools.cache
def _libc_renameat2() -> Callable[..., int] | None:
    if platform.system() != "Linux":
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def rename_noreplace(src: str, dst: str, dir_fd: int) -> bool:
    """Rename ``src`` to ``dst`` inside the folder ``dir_fd`` only if ``dst`` does not exist, in one
    atomic step (``renameat2(RENAME_NOREPLACE)``): ``FileExistsError`` if it does. False when the
    kernel or the file system cannot do it (nothing was renamed; the caller checks and renames)."""
    fn = _libc_renameat2()
    if fn is None:
        return False
    if fn(dir_fd, os.fsencode(src), dir_fd, os.fsencode(dst), RENAME_NOREPLACE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), dst)


__all__ = [
    "copy_fd",
    "file_system_type",
    "fsync_dir",
    "rename_noreplace",
    "syncfs",
    "syncfs_trusted",
    "write_all",
]
