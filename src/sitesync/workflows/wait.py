"""``wait ID --site S``: block until every file of a representation (and, with links, of every
representation it references) is a verified copy on a site.

``Client.wait`` first asks for what is missing at ``WAIT_PRIORITY`` (never lowering a higher
priority) and wakes this machine's workers; ``wait_until`` then polls the database. The outcome
is one of:

* ``present`` (exit code 0): every file is a verified copy on the site;
* ``failed`` (exit code 3): a file failed on the site after its attempts, or no site holds a
  verified copy of it any more (nothing could ever deliver it);
* ``timeout`` (exit code 4): the time limit passed first; the requests stay queued.

Bad input (unknown representation or site, sync off) is exit code 2, like every command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sitesync.state.store import StateStore

WAIT_PRIORITY = 900
PRESENT, FAILED, TIMEOUT = "present", "failed", "timeout"
EXIT_CODES = {PRESENT: 0, FAILED: 3, TIMEOUT: 4}

WaitProgressFn = Callable[[dict[str, Any]], None]


def complete(state: dict[str, Any]) -> bool:
    return state["counts"].get("present", 0) >= state["files"]


def snapshot(store: StateStore, rep_ids: Sequence[int], site: str) -> dict[str, Any]:
    """Where the wait stands: totals, and per representation its status on the site."""
    states = store.site_progress(rep_ids, site)
    reps = []
    errors: list[str] = []
    for rid in rep_ids:
        st = states[rid]
        present = st["counts"].get("present", 0)
        if complete(st):
            status = PRESENT
        elif st["counts"].get("failed", 0):
            status = FAILED
            errors.extend(f"representation {rid}: {e}" for e in st["errors"])
        elif st["without_copy"]:
            status = FAILED
            errors.append(
                f"representation {rid}: {st['without_copy']} files have no verified copy on any site; "
                "restore them (`sitesync validate SITE`) or publish again"
            )
        else:
            status = "waiting"
        reps.append(
            {
                "id": rid,
                "files": st["files"],
                "present": present,
                "size": st["size"],
                "bytes_present": st["bytes_present"],
                "status": status,
            }
        )
    return {
        "site": site,
        "files": sum(r["files"] for r in reps),
        "present": sum(r["present"] for r in reps),
        "size": sum(r["size"] for r in reps),
        "bytes_present": sum(r["bytes_present"] for r in reps),
        "representations": reps,
        "errors": errors,
    }


def wait_until(
    store: StateStore,
    rep_ids: Sequence[int],
    site: str,
    *,
    timeout: float | None,
    poll_interval: float,
    progress: WaitProgressFn | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    while True:
        snap = snapshot(store, rep_ids, site)
        statuses = {r["status"] for r in snap["representations"]}
        if statuses <= {PRESENT}:
            outcome = PRESENT
        elif FAILED in statuses:
            outcome = FAILED
        elif deadline is not None and time.monotonic() >= deadline:
            outcome = TIMEOUT
        else:
            outcome = None
        snap["seconds"] = round(time.monotonic() - started, 3)
        if progress is not None:
            progress(snap)
        if outcome is not None:
            snap["status"] = outcome
            snap["exit_code"] = EXIT_CODES[outcome]
            return snap
        pause = poll_interval if deadline is None else max(0.0, min(poll_interval, deadline - time.monotonic()))
        sleep(pause)


__all__ = ["EXIT_CODES", "FAILED", "PRESENT", "TIMEOUT", "WAIT_PRIORITY", "snapshot", "wait_until"]
