"""``clear PROJECT --site S``: remove a project's copies from a site (typically an artist's own).

Each representation with a copy or a request on the site goes through the guarded removal
(``engine/removal.py``): copies whose removal would leave fewer than ``min_copies`` verified copies
elsewhere (in the catalog and at their storage) are kept, as are representations being transferred
right now or whose deletion failed. Ctrl-C stops the clear after recording what was done.
The result lists what was removed and, for everything kept, why. A preferred-content rule of the
site may queue what it wants again; change the rule to stop that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sitesync.errors import RemovalInterrupted, SitesyncError
from sitesync.state.store import StateStore


def clear_site(
    store: StateStore,
    project_id: int,
    project: str,
    site: str,
    remove: Callable[[int, str], Any],
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    rep_ids = store.representations_on_site(project_id, site)
    removed: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    dropped = 0
    for n, rep_id in enumerate(rep_ids, 1):
        try:
            result = remove(rep_id, site)
        except RemovalInterrupted:
            raise
        except SitesyncError as exc:
            kept.append({"representation_id": rep_id, "reason": str(exc)})
        else:
            dropped += result.dropped_requests
            if result.deleted:
                removed.append({"representation_id": rep_id, "files": result.deleted})
        if progress is not None:
            progress(n, len(rep_ids))
    return {
        "project": project,
        "site": site,
        "representations": len(rep_ids),
        "removed": removed,
        "files_removed": sum(x["files"] for x in removed),
        "dropped_requests": dropped,
        "kept": kept,
    }


__all__ = ["clear_site"]
