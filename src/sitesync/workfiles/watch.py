"""Hearing workfile saves as they happen: a file-system watcher feeding ``scan_paths``.

``WorkAreaWatcher`` watches one project folder on one root of a file-system site (``watchfiles``:
Rust ``notify``, inotify on Linux, FSEvents on macOS, ReadDirectoryChangesW on Windows) in a
background thread and collects the relative paths that changed below it, keeping only paths that
can be or hold workfiles (``WorkAreaSelector``: ignored DCC noise is dropped at once). The caller
``wait(timeout)``s for "something changed" and hands what ``take()``/``wait()`` returned to
``scan_paths`` (or passes ``on_change``, called from the watcher thread, to be woken: the worker's
``WorkfileLoop`` does), so a save is picked up within about a second (``debounce_ms``). ``""`` among them
means "scan everything" (the project folder itself changed, or more than ``MAX_HINTS`` paths did).

Watchers miss events (overflowing queues, changes made while no one watched, another machine
writing to a share), so **scanning remains the source of truth**: the caller still runs periodic
full scans (``scan_work_area``); the watcher only makes changes show up sooner.

Where watching is impossible the watcher degrades cleanly: ``start()`` returns False, ``error``
says why and one warning is logged (the inotify watch limit: one watch per folder below the project
folder, ``fs.inotify.max_user_watches``; a site whose provider has no local path; a folder that is
not there). On a network share (NFS, SMB) inotify sees only the changes made through this machine,
which are the saves of its artist; changes made elsewhere come with the scans (logged once, at
info level). ``wait`` then just sleeps out its timeout, so the caller's loop stays the same.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from types import TracebackType

from sitesync.providers.base import CAP_LOCAL_PATH, Provider
from sitesync.providers.fileio import file_system_type
from sitesync.workfiles.select import WorkAreaSelector

log = logging.getLogger("sitesync.workfiles")

# file systems where inotify hears only what this machine does
NETWORK_FILE_SYSTEMS = frozenset({"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "fuse.sshfs", "fuse.rclone"})
START_TIMEOUT = 10.0
MAX_HINTS = 10_000  # more changed paths than this between two takes: "" (scan everything) instead


class WorkAreaWatcher:
    """Collects changed relative paths below ``base`` (a provider path, as for ``scan_work_area``)."""

    def __init__(
        self,
        provider: Provider,
        base: str,
        selector: WorkAreaSelector,
        *,
        debounce_ms: int = 200,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.provider = provider
        self.base = base
        self.selector = selector
        self.debounce_ms = debounce_ms
        self.on_change = on_change  # called (from the watcher thread) after each change kept
        self.error: str | None = None
        self._folder: str | None = None
        self._changed: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def watching(self) -> bool:
        """Whether changes are being heard now."""
        return self._ready.is_set() and self.error is None and self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = START_TIMEOUT) -> bool:
        """Start watching; True once the watches are in place, False (with ``error`` set and a
        warning logged) where watching is impossible."""
        if self._thread is not None:
            return self.watching
        folder = self._local_folder()
        if folder is None:
            return False
        self._folder = folder
        self._note_network_share(folder)
        self._thread = threading.Thread(target=self._run, name=f"sitesync-watch-{self.provider.site}", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        if not self._ready.is_set() and self.error is None:
            self._fail(f"the watcher did not start within {timeout:.0f} s")
        return self.watching

    def _local_folder(self) -> str | None:
        if CAP_LOCAL_PATH not in self.provider.capabilities:
            self._fail(f"site {self.provider.site} ({self.provider.name}) is not a mounted file system")
            return None
        try:
            folder = self.provider.local_path(self.base)
        except Exception as exc:
            self._fail(str(exc))
            return None
        if folder is None or not os.path.isdir(folder):
            self._fail(f"{self.base} is not a folder here")
            return None
        return folder

    def _note_network_share(self, folder: str) -> None:
        with contextlib.suppress(OSError):
            kind = file_system_type(os.stat(folder).st_dev)
            if kind in NETWORK_FILE_SYSTEMS:
                log.info(
                    "watching %s on a %s share: saves made on this machine are heard at once, "
                    "changes made from other machines come with the periodic scans",
                    self.base,
                    kind,
                )

    def _fail(self, reason: str) -> None:
        self.error = reason
        log.warning(
            "workfile watcher for %s is off (%s): changes are found by the periodic scans only", self.base, reason
        )
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        import watchfiles

        assert self._folder is not None
        try:
            for changes in watchfiles.watch(
                self._folder,
                watch_filter=None,
                debounce=self.debounce_ms,
                step=50,
                stop_event=self._stop,
                rust_timeout=1000,
                yield_on_timeout=True,
                raise_interrupt=False,
                ignore_permission_denied=True,
            ):
                self._ready.set()
                if changes:
                    self._collect(path for _change, path in changes)
        except Exception as exc:  # the watch limit, a folder gone: degrade, never crash the worker
            reason = str(exc) or type(exc).__name__
            if "limit" in reason.lower():
                reason += " (raise fs.inotify.max_user_watches: one watch per folder below the project folder)"
            self._fail(reason)

    def _collect(self, paths: Iterator[str]) -> None:
        assert self._folder is not None
        top = self._folder.rstrip(os.sep)
        kept = set()
        for path in paths:
            if path == top:
                kept.add("")  # the project folder itself (moved, removed): a full look
                continue
            if not path.startswith(top + os.sep):
                continue
            rel = path[len(top) + 1 :].replace(os.sep, "/")
            if self.selector.wants(rel) or not self.selector.prunes(rel):
                kept.add(rel)
        if kept:
            with self._cond:
                if "" not in self._changed:
                    self._changed.update(kept)
                if len(self._changed) > MAX_HINTS:
                    self._changed = {""}  # a mass change: one full scan is cheaper than this many looks
                self._cond.notify_all()
            if self.on_change is not None:
                try:
                    self.on_change()
                except Exception as exc:  # a waking hook must never end the watch
                    log.warning("workfile watcher for %s: waking the worker failed: %s", self.base, exc)

    @property
    def pending(self) -> bool:
        """Whether changes were heard that no ``take``/``wait`` returned yet."""
        with self._cond:
            return bool(self._changed)

    def take(self) -> set[str]:
        """The relative paths changed since the last ``take``/``wait`` (and forget them)."""
        with self._cond:
            out, self._changed = self._changed, set()
        return out

    def wait(self, timeout: float) -> set[str]:
        """Wait up to ``timeout`` seconds for a change; return (and forget) the changed paths, empty
        on timeout. A watcher that is off just waits out the timeout (or until ``stop``)."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._changed) or self._stop.is_set(), timeout)
            out, self._changed = self._changed, set()
        return out

    def stop(self) -> None:
        """Stop watching (the thread ends within about 50 ms) and wake a waiting caller."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> WorkAreaWatcher:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


__all__ = ["NETWORK_FILE_SYSTEMS", "WorkAreaWatcher"]
