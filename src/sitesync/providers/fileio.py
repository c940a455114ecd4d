"""Low-level file copying for file-system providers: writing a buffer whole, copying one open file
into another in the kernel (``copy_file_range``) with a buffered fallback, and fsyncing a folder."""

from __future__ import annotations

import errno
import logging
import os
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


__all__ = ["copy_fd", "fsync_dir", "write_all"]
