"""``fsck SITE``: re-hash every verified copy the catalog records on a site.

Each copy is read to its end through the catalog's hash algorithm (in a few threads, with byte
progress). A copy that is missing, has the wrong size or the wrong hash stops being a verified
copy at once (so it is never a transfer source nor counted toward ``min_copies``): it is queued
again, and the engine re-fetches it from a good copy and atomically replaces the bad one; when no
other verified copy exists it is marked ``failed`` with an error saying so, and the damaged file
is left where it is. A copy that cannot be read right now (permission, I/O error) is reported and
left as it is: unknown is not bad. If the site becomes unreachable the check stops, keeping what
it recorded so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sitesync.errors import SiteUnavailableError
from sitesync.sites import MachineView, ProviderPool
from sitesync.state.store import StateStore
from sitesync.workflows.sitecheck import (
    ByteCounter,
    HashResult,
    ProgressFn,
    Reporter,
    Target,
    describe_error,
    hash_copy,
    run_threaded,
    select_targets,
)

PAGE = 256
PROBLEMS_SHOWN = 100


@dataclass(frozen=True)
class _Verdict:
    problem: str | None  # None: the copy is good
    reason: str = ""


def fsck_site(
    store: StateStore,
    view: MachineView,
    pool: ProviderPool,
    actor: str,
    site: str,
    project: str | None = None,
    *,
    progress: ProgressFn | None = None,
    threads: int = 4,
) -> dict[str, Any]:
    clock = time.monotonic()
    chosen = select_targets(store, view, pool, site, project, "fsck")
    name = chosen.site
    report = Reporter(progress)
    totals = [store.present_totals(t.project.id, name) for t in chosen.targets]
    total_files = sum(n for n, _ in totals)
    total_bytes = sum(b for _, b in totals)
    counter = ByteCounter()
    out: dict[str, Any] = {
        "site": name,
        "projects": [t.project.name for t in chosen.targets],
        "skipped": chosen.skipped,
        "files": total_files,
        "bytes": total_bytes,
        "checked": 0,
        "ok": 0,
        "corrupt": 0,
        "missing": 0,
        "requeued": 0,
        "failed": 0,
        "unreadable": 0,
        "problems": [],
        "interrupted": None,
    }
    report("hash", 0, total_bytes, "bytes", force=True)
    try:
        for target in chosen.targets:
            _check_project(
                store,
                target,
                name,
                actor,
                out,
                counter,
                lambda: report("hash", counter.value, total_bytes, "bytes"),
                threads,
            )
    except SiteUnavailableError as exc:
        out["interrupted"] = f"site {name} became unreachable: {exc}; run fsck again when it is back"
    report("hash", counter.value, total_bytes, "bytes", force=True)
    out["bytes_read"] = counter.value
    out["seconds"] = round(time.monotonic() - clock, 3)
    return out


def _verdict(target: Target, site: str, row: Any, counter: ByteCounter) -> _Verdict:
    location = target.spec.resolve(row.path)
    entry = target.provider.stat(location)
    if entry is None:
        return _Verdict("missing", f"the copy on {site} is missing (found by fsck)")
    if entry.size != row.size:
        counter.add(row.size)
        return _Verdict(
            "corrupt", f"corrupt copy on {site}: size {entry.size} bytes, catalog says {row.size} (found by fsck)"
        )
    result: HashResult = hash_copy(target.provider, location, row.hash_algo, counter)
    if result.size != row.size or result.digest != row.hash:
        return _Verdict(
            "corrupt",
            f"corrupt copy on {site}: {row.hash_algo} {result.digest[:16]}..., catalog says {row.hash[:16]}... "
            "(found by fsck)",
        )
    return _Verdict(None)


def _check_project(
    store: StateStore,
    target: Target,
    site: str,
    actor: str,
    out: dict[str, Any],
    counter: ByteCounter,
    tick: Any,
    threads: int,
) -> None:
    for window in store.present_windows(target.project.id, site):
        for start in range(0, len(window), PAGE):
            _check_page(store, target, site, actor, window[start : start + PAGE], out, counter, tick, threads)


def _check_page(
    store: StateStore,
    target: Target,
    site: str,
    actor: str,
    rows: list[Any],
    out: dict[str, Any],
    counter: ByteCounter,
    tick: Any,
    threads: int,
) -> None:
    bad: list[tuple[int, float | None, str]] = []
    kinds: dict[int, tuple[Any, str]] = {}
    for row, verdict, exc in run_threaded(rows, lambda r: _verdict(target, site, r, counter), tick, threads):
        out["checked"] += 1
        if isinstance(exc, SiteUnavailableError):
            _record(store, target, site, actor, bad, kinds, out)
            raise exc
        if exc is not None:
            out["unreadable"] += 1
            _problem(out, target, row, "unreadable", describe_error(exc), "left as it is")
        elif verdict.problem is None:
            out["ok"] += 1
        else:
            out[verdict.problem] += 1
            bad.append((row.file_id, row.present_since, verdict.reason))
            kinds[row.file_id] = (row, verdict.problem)
    _record(store, target, site, actor, bad, kinds, out)


def _record(
    store: StateStore,
    target: Target,
    site: str,
    actor: str,
    bad: list[tuple[int, float | None, str]],
    kinds: dict[int, tuple[Any, str]],
    out: dict[str, Any],
) -> None:
    if not bad:
        return
    result = store.mark_unverified(site, target.spec.alternatives, bad, actor, "fsck_corrupt")
    out["requeued"] += len(result.requeued)
    out["failed"] += len(result.failed)
    reasons = {fid: reason for fid, _, reason in bad}
    for fid in result.requeued:
        row, problem = kinds[fid]
        _problem(out, target, row, problem, reasons[fid], "queued again from a good copy")
    for fid in result.failed:
        row, problem = kinds[fid]
        _problem(out, target, row, problem, reasons[fid], "failed: no other verified copy")
    bad.clear()


def _problem(out: dict[str, Any], target: Target, row: Any, problem: str, reason: str, action: str) -> None:
    if len(out["problems"]) < PROBLEMS_SHOWN:
        out["problems"].append(
            {
                "project": target.project.name,
                "representation_id": row.representation_id,
                "file_id": row.file_id,
                "path": row.path,
                "problem": problem,
                "reason": reason,
                "action": action,
            }
        )


__all__ = ["fsck_site"]
