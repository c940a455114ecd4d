"""Walking a folder of a file-system site with exact stat facts, beneath its root (``local_drive``).

Change detection (``sitesync.workfiles.scan``) looks at every file of a work area at each scan, so
the walk is the whole cost of scanning an unchanged tree: one ``fstatat`` per file, nothing else.
It runs on folder descriptors: the walked folder is opened beneath its root (``beneath.Root``, no
link followed out of it); each subfolder is opened relative to its parent's descriptor with
``O_NOFOLLOW``; ``os.scandir`` on a descriptor gives names and types without a stat, and the
``DirEntry``'s own stat (``fstatat(dir_fd, name, AT_SYMLINK_NOFOLLOW)``) the facts. A symbolic link,
to a file or a folder, is reported as a link (``is_symlink``) with its own facts and never followed:
it cannot lead the walk, or a later read, out of the root. A folder that cannot be read is reported
``unreadable``: its files are unknown, never absent. ``stat_nofollow`` looks at one path the same
way (no link followed anywhere on it), so a look at a single file agrees with the walk.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as stat_mod
from collections.abc import Callable, Generator, Iterator

from sitesync.providers.base import StatEntry
from sitesync.providers.beneath import O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW

log = logging.getLogger("sitesync.local_drive")

_DIR_FLAGS = os.O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC


def walk_fd(
    top_fd: int,
    prune: Callable[[str], bool] | None,
    skip_name: Callable[[str], bool],
    where: str,
) -> Iterator[StatEntry]:
    """Every file below the open folder ``top_fd`` (paths relative to it, ``/``-separated), in no
    particular order. ``prune(reldir)`` skips a folder; ``skip_name(name)`` skips a file name
    (sitesync's own temporary files). ``where`` names the folder in log lines. The caller keeps
    ``top_fd`` open during the walk and closes it. Depth first, holding open only the folders on
    the way down (a folder of 10,000 task folders does not open 10,000 descriptors at once)."""
    subfolders = yield from _one_folder("", top_fd, prune, skip_name, where)
    stack: list[tuple[str, int, Iterator[str]]] = [("", top_fd, iter(subfolders))]
    try:
        while stack:
            rel, fd, names = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if fd != top_fd:
                    os.close(fd)
                continue
            path = f"{rel}/{name}" if rel else name
            try:
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                    continue  # removed, or replaced by a link or a file since: the next walk sees it
                log.warning("cannot open folder %s/%s: %s (its files are kept as they were)", where, path, exc.strerror)
                yield StatEntry(path, 0, 0, 0, False, True)
                continue
            stack.append((path, sub, iter(())))
            below = yield from _one_folder(path, sub, prune, skip_name, where)
            stack[-1] = (path, sub, iter(below))
    finally:
        for _rel, fd, _names in stack:
            if fd != top_fd:
                os.close(fd)


def _one_folder(
    rel: str,
    fd: int,
    prune: Callable[[str], bool] | None,
    skip_name: Callable[[str], bool],
    where: str,
) -> Generator[StatEntry, None, list[str]]:
    """The files of one open folder; returns the names of its subfolders to walk."""
    try:
        with os.scandir(fd) as it:
            entries = list(it)
    except OSError as exc:
        log.warning("cannot read folder %s/%s: %s (its files are kept as they were)", where, rel, exc.strerror)
        yield StatEntry(rel, 0, 0, 0, False, True)
        return []
    subfolders: list[str] = []
    prefix = f"{rel}/" if rel else ""
    for entry in entries:
        try:
            # the type comes with the name (d_type) where the file system gives it: no stat for folders
            if entry.is_dir(follow_symlinks=False):
                if prune is None or not prune(prefix + entry.name):
                    subfolders.append(entry.name)
                continue
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone since the folder was read
        except OSError as exc:
            log.warning("cannot stat %s/%s%s: %s", where, prefix, entry.name, exc.strerror)
            continue
        mode = st.st_mode
        if stat_mod.S_ISREG(mode):
            if not skip_name(entry.name):
                yield StatEntry(prefix + entry.name, st.st_size, st.st_mtime_ns, st.st_ino, False)
        elif stat_mod.S_ISLNK(mode):
            yield StatEntry(prefix + entry.name, st.st_size, st.st_mtime_ns, st.st_ino, True)
        # sockets, fifos, devices: not files of a site
    return subfolders


def stat_nofollow(root_fd: int, rel: str, path: str) -> StatEntry | None:
    """The exact facts of ``rel`` below the open folder ``root_fd``, as the walk would see them: no
    link is followed, in the last component or on the way (a folder reached only through a link
    holds no file of the walk: None)."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    fd = root_fd
    try:
        for name in parts[:-1]:
            try:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    return None
                raise
            if fd != root_fd:
                os.close(fd)
            fd = next_fd
        return stat_in_fd(fd, parts[-1], path)
    finally:
        if fd != root_fd:
            os.close(fd)


def stat_in_fd(folder_fd: int, name: str, path: str) -> StatEntry | None:
    """The exact facts of ``name`` in an open folder (a link is reported, never followed)."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat_mod.S_ISLNK(st.st_mode):
        return StatEntry(path, st.st_size, st.st_mtime_ns, st.st_ino, True)
    if not stat_mod.S_ISREG(st.st_mode):
        return None
    return StatEntry(path, st.st_size, st.st_mtime_ns, st.st_ino, False)


__all__ = ["stat_in_fd", "stat_nofollow", "walk_fd"]
