"""Which files another process of this machine holds open for writing (Linux ``/proc``).

Workfile change detection does not take a file that is still being written. A writer that keeps
the file open while it pauses (a DCC streaming a big scene in bursts) leaves its size and
modification time still for a moment; the kernel tells who holds it: ``/proc/PID/fd/N`` links to
the open file and ``/proc/PID/fdinfo/N`` gives its open flags. One pass over the descriptors of
every process this user may look at (the artist's DCC runs as the artist, like the worker; root
sees all), only when a scan has files to hash: its cost is proportional to the open files of the
machine (tens of milliseconds on a workstation), not to the work area. It never sees a writer on
another machine of a network share; there the scanner's other checks decide. Elsewhere than
Linux it tells nothing (an empty set).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

PROC = "/proc"
_WRITE_MODES = os.O_WRONLY | os.O_RDWR


def open_for_writing(real_paths: Iterable[str], proc: str = PROC) -> set[str]:
    """The paths among ``real_paths`` (resolved OS paths) that a process other than this one holds
    open for writing now."""
    wanted = set(real_paths)
    found: set[str] = set()
    if not wanted or not os.path.isdir(os.path.join(proc, "self", "fd")):
        return found
    me = str(os.getpid())
    pids: list[str] = []
    with contextlib.suppress(OSError):
        pids = [p for p in os.listdir(proc) if p.isdigit() and p != me]
    for pid in pids:
        fd_dir = os.path.join(proc, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or another user's process
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target in wanted and target not in found and _writable(proc, pid, fd):
                found.add(target)
        if len(found) == len(wanted):
            break
    return found


def _writable(proc: str, pid: str, fd: str) -> bool:
    """Whether the descriptor was opened for writing (``flags:`` of its fdinfo, octal)."""
    try:
        with open(os.path.join(proc, pid, "fdinfo", fd), encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags:"):
                    return bool(int(line.split()[1], 8) & _WRITE_MODES)
    except (OSError, ValueError, IndexError):
        return False
    return False


__all__ = ["open_for_writing"]
