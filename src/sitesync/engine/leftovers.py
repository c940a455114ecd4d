"""The worker's sweep of leftovers: folders where a write failed are looked at again later.

A write cut off (a dropped connection, a killed server, a worker stopped mid-file) may leave a
temporary file or an unfinished multipart upload behind. Providers remove their own after their
next successful write; other writers' leftovers become removable once they are older than the
site's ``leftover_age``. The worker remembers the folders where its writes failed and asks the
provider to sweep each (``Provider.sweep_leftovers``) every ``SWEEP_SECONDS`` until the folder has
been watched for longer than ``LEFTOVER_AGE_SECONDS``: by then anything left there is old enough.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sitesync.providers.base import LEFTOVER_AGE_SECONDS

SWEEP_SECONDS = 600.0
MOST_FOLDERS = 10_000  # remembered at once; the oldest are dropped (fsck still finds theirs)

SiteKey = tuple[str, str]  # (project, site)


@dataclass
class LeftoverSweep:
    clock: Callable[[], float] = time.monotonic
    watch_seconds: float = LEFTOVER_AGE_SECONDS + SWEEP_SECONDS
    every: float = SWEEP_SECONDS
    _folders: dict[tuple[SiteKey, str], float] = field(default_factory=dict)  # -> first failure
    _last: float | None = None

    def failed_write(self, key: SiteKey, folder: str) -> None:
        """A write into ``folder`` of the site failed: it may have left something there."""
        now = self.clock()
        self._folders.setdefault((key, folder), now)
        if self._last is None:
            self._last = now  # its leftovers are young now: the first sweep comes one period later
        while len(self._folders) > MOST_FOLDERS:
            del self._folders[next(iter(self._folders))]

    def due(self) -> list[tuple[SiteKey, str]]:
        """The folders to sweep now (every ``every`` seconds); folders watched long enough are
        forgotten after this sweep."""
        now = self.clock()
        if not self._folders or (self._last is not None and now - self._last < self.every):
            return []
        self._last = now
        out = sorted(self._folders)
        for item, since in list(self._folders.items()):
            if now - since >= self.watch_seconds:
                del self._folders[item]
        return out


__all__ = ["SWEEP_SECONDS", "LeftoverSweep"]
