"""Opening paths beneath a site root without ever following a symbolic link out of it.

File-system providers (``local_drive``) act on ``root + relative path``. A symbolic link planted
inside the root (a folder linked to ``/``, a file linked to ``/etc/passwd``, a relative link with
enough ``..``) must not make a read, write or delete happen outside the root. The rules are
Linux's ``RESOLVE_BENEATH``: a link is followed only while resolution stays beneath the root; an
absolute link, or a ``..`` that would climb above the root, is refused (``PathEscapeError``).

Everything is done on file descriptors, at the moment of the operation:

* ``open_beneath(root_fd, rel, flags)`` opens ``rel`` below the open folder ``root_fd``: with the
  kernel's ``openat2(RESOLVE_BENEATH)`` where it exists (Linux 5.6+), otherwise by walking the
  path one component at a time with ``O_NOFOLLOW`` and resolving each link by hand under the
  same rules (every step relative to a folder descriptor already proven to be beneath the root,
  so nothing can be swapped in between the check and the use);
* callers then create, rename and unlink *names* inside an opened parent folder (``dir_fd``), which
  never follows a link in the last component.

``Root`` bundles a root folder with these operations for one provider.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import stat
from collections.abc import Iterator
from typing import Any

from sitesync.errors import PathEscapeError

RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437, "riscv64": 437, "ppc64le": 437, "s390x": 437}
_MAX_LINKS = 40
O_PATH = getattr(os, "O_PATH", 0)
O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Kernel:
    """``openat2`` through libc's ``syscall``; ``available`` turns False at the first ENOSYS."""

    def __init__(self) -> None:
        number = _SYS_OPENAT2.get(platform.machine()) if os.name == "posix" and platform.system() == "Linux" else None
        self.number: int = number or 0
        self.available = number is not None
        self._syscall: Any = None
        if self.available:
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                self._syscall = libc.syscall
                self._syscall.restype = ctypes.c_long
            except (OSError, AttributeError):
                self.available = False

    def openat2(self, dir_fd: int, path: str, flags: int, mode: int = 0) -> int:
        how = _OpenHow(flags, mode if flags & os.O_CREAT else 0, RESOLVE_BENEATH)
        assert self._syscall is not None
        fd = self._syscall(
            ctypes.c_long(self.number),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(os.fsencode(path)),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        if fd < 0:
            code = ctypes.get_errno()
            if code == errno.ENOSYS:
                self.available = False
            raise OSError(code, os.strerror(code), path)
        return int(fd)


KERNEL = _Kernel()


def _escape(root: str, rel: str) -> PathEscapeError:
    return PathEscapeError(
        f"{os.path.join(root, rel)}: a symbolic link leads out of the site root {root} (or is absolute); "
        "sitesync never reads, writes or deletes outside a root: remove or fix the link"
    )


def open_beneath(root_fd: int, rel: str, flags: int, mode: int = 0o644, *, root: str = "", kernel: bool = True) -> int:
    """Open ``rel`` (``/``-separated, relative) below the folder ``root_fd``; links are followed only
    while they stay beneath it. Raises ``PathEscapeError`` for a link out of the root, ``OSError``
    otherwise (ENOENT, ENOTDIR...)."""
    flags |= O_CLOEXEC
    if kernel and KERNEL.available:
        try:
            return KERNEL.openat2(root_fd, rel, flags, mode)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise _escape(root, rel) from None
            if exc.errno != errno.ENOSYS:
                raise
    return _walk_open(root_fd, rel, flags, mode, root)


def _walk_open(root_fd: int, rel: str, flags: int, mode: int, root: str) -> int:
    """``open_beneath`` without the kernel's help: one component at a time from ``root_fd``, each
    opened with ``O_NOFOLLOW``; a link is read and its target spliced into the rest of the path
    (relative only, never climbing above the root)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    stack: list[int] = []  # folder descriptors we opened, below root_fd; their depth is len(stack)
    links = 0
    try:
        while True:
            current = stack[-1] if stack else root_fd
            if not parts:  # the path named a folder we already hold (the root, or after "..")
                return os.open(".", flags, mode, dir_fd=current)
            name = parts.pop(0)
            if name == "..":
                if not stack:
                    raise _escape(root, rel)
                os.close(stack.pop())
                continue
            if not parts:  # the last component: a link is resolved, anything else opened as it is
                if not _is_link(name, current):
                    # O_NOFOLLOW: a link swapped in since the look fails (or, with O_PATH, opens the
                    # link itself, which is not a file)
                    return os.open(name, flags | O_NOFOLLOW, mode, dir_fd=current)
            else:
                try:
                    stack.append(os.open(name, os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, dir_fd=current))
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
                        raise
                    if not _is_link(name, current):
                        raise
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", rel)
            target = os.readlink(name, dir_fd=current)
            if target.startswith("/"):
                raise _escape(root, rel)
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    finally:
        for fd in stack:
            os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


class Root:
    """One root folder of a file-system site, and operations that stay beneath it."""

    def __init__(self, base: str, *, kernel: bool = True) -> None:
        self.base = base
        self.kernel = kernel

    def relative(self, path: str) -> str | None:
        """The part of ``path`` below this root ("" for the root itself), or None if outside."""
        base = self.base.rstrip("/\\")
        if path == base:
            return ""
        if path.startswith(base + os.sep) or (os.sep != "/" and path.startswith(base + "/")):
            return path[len(base) + 1 :].replace(os.sep, "/")
        return None

    @contextlib.contextmanager
    def opened(self) -> Iterator[int]:
        """The root folder itself, opened (a missing root raises ``FileNotFoundError``)."""
        fd = os.open(self.base, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def open_root(self) -> int:
        """The root folder, opened (the caller closes it)."""
        return os.open(self.base, os.O_RDONLY | O_DIRECTORY | O_CLOEXEC)

    def open(self, rel: str, flags: int, mode: int = 0o644) -> int:
        with self.opened() as root_fd:
            return open_beneath(root_fd, rel, flags, mode, root=self.base, kernel=self.kernel)

    @contextlib.contextmanager
    def folder(self, rel_folder: str, *, create: bool = False) -> Iterator[int]:
        """The folder ``rel_folder`` below the root, opened (created with its parents if asked)."""
        flags = os.O_RDONLY | O_DIRECTORY
        try:
            fd = self.open(rel_folder, flags) if rel_folder else self.open_root()
        except FileNotFoundError:
            if not create:
                raise
            fd = self.makedirs(rel_folder)
        try:
            yield fd
        finally:
            os.close(fd)

    def makedirs(self, rel_folder: str) -> int:
        """Create the missing folders of ``rel_folder`` one by one, each inside a folder descriptor
        proven beneath the root; returns the last one opened."""
        parts = [p for p in rel_folder.split("/") if p]
        done: list[str] = []
        fd = self.open_root()
        try:
            for name in parts:
                done.append(name)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
                os.close(fd)
                fd = -1
                fd = self.open("/".join(done), os.O_RDONLY | O_DIRECTORY)
            return fd
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise


__all__ = ["KERNEL", "O_PATH", "RESOLVE_BENEATH", "Root", "open_beneath"]
