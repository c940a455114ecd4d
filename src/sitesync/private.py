"""This machine's private files: the folders and files that hold its settings, secrets, API token
and SQLite state. They are created readable by their owner only (folders 0700, files 0600), looser
ones are tightened by ``sitesync init``, and any failure to create or write them is one line that
says what is wrong with the folder (a file in the way, read-only, full, not permitted) instead of
an ``OSError`` traceback.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from sitesync.errors import InvalidSettingError

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def describe_os_error(exc: OSError) -> str:
    """Why an operation on a local file failed, in words a user acts on."""
    code = exc.errno
    if code == errno.EROFS:
        return "the file system is read-only"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ENOTDIR:
        return "a file is in the way where a folder is needed"
    if code == errno.ENOENT:
        return "the folder cannot be created there"
    return exc.strerror or type(exc).__name__


def ensure_private_folder(path: Path, *, what: str = "folder") -> Path:
    """Create ``path`` (and missing parents) with mode 0700; an existing folder is left as it is."""
    try:
        if path.is_dir():
            return path
        if path.exists():
            raise InvalidSettingError(f"{what} {path} is a file, not a folder; move it away or choose another place")
        old = os.umask(0o077)
        try:
            path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        finally:
            os.umask(old)
    except OSError as exc:
        raise InvalidSettingError(
            f"cannot create the {what} {path}: {describe_os_error(exc)}; "
            "point SITESYNC_HOME (or --db) at a folder this user can write"
        ) from None
    return path


def write_private_file(path: Path, text: str, *, what: str = "file") -> None:
    """Write ``text`` to ``path`` atomically, readable by its owner only."""
    ensure_private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, FILE_MODE)  # O_CREAT's mode does not apply to a file left by a crashed writer
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InvalidSettingError(
            f"cannot write the {what} {path}: {describe_os_error(exc)}; "
            "point SITESYNC_HOME at a folder this user can write"
        ) from None


def tighten(path: Path, mode: int) -> str | None:
    """Remove group and other permissions from ``path`` if it has any; returns what was done."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidSettingError(f"cannot inspect {path}: {describe_os_error(exc)}") from None
    if not current & 0o077:
        return None
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise InvalidSettingError(
            f"{path} is readable by other users (mode {current:04o}) and cannot be tightened: "
            f"{describe_os_error(exc)}; run `chmod {mode:o} {path}` as its owner"
        ) from None
    return f"{path} ({current:04o} -> {mode:04o})"


__all__ = ["describe_os_error", "ensure_private_folder", "tighten", "write_private_file"]
