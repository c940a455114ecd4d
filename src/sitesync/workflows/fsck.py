"""``fsck SITE``: re-hash every verified copy the catalog records on a site.

Each copy is read to its end through the catalog's hash algorithm (in a few threads, with byte
progress). A copy that is missing, has the wrong size or the wrong hash stops being a verified
copy at once (so it is never a transfer source nor counted toward ``min_copies``): it is queued
again, and the engine re-fetches it from a good copy and atomically replaces the bad one (only if
the file there is still the copy sitesync verified, bit rot included: never a file someone put in
its place); when no other verified copy exists it is ``missing`` (lost on that site) with an error
saying so, and the damaged file is left where it is. Like ``validate`` it starts only on storage
proven to be the site's own (its marker), unless ``force``. A copy that cannot be read right now (permission, I/O error) is reported and
left as it is: unknown is not bad. If the site becomes unreachable the check stops, keeping what
it recorded so far. Finally it removes what interrupted writes left on the site (temporary files,
unfinished multipart uploads older than the site's ``leftover_age``) and reports them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sitesync.errors import SiteUnavailableError
from sitesync.machine_view import MachineView, ProviderPool
from sitesync.state.store import StateStore
from sitesync.workflows.checks_common import (
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
    seen: tuple[int, float | None, str | None] | None = None  # the stored file checked: size, mtime, ref


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
    force: bool = False,
) -> dict[str, Any]:
    clock = time.monotonic()
    chosen = select_targets(store, view, pool, site, project, "fsck", actor=actor, force=force)
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
        "lost": 0,
        "unreadable": 0,
        "problems": [],
        "interrupted": None,
        "leftovers_removed": 0,
        "leftovers": [],
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
        for target in chosen.targets:
            _sweep(target, out)
    except SiteUnavailableError as exc:
        out["interrupted"] = f"site {name} became unreachable: {exc}; run fsck again when it is back"
    report("hash", counter.value, total_bytes, "bytes", force=True)
    out["bytes_read"] = counter.value
    out["seconds"] = round(time.monotonic() - clock, 3)
    return out


def _sweep(target: Target, out: dict[str, Any]) -> None:
    """Remove the leftovers of interrupted writes below each root of the site."""
    for base in sorted(set(target.provider.roots.values())):
        removed = target.provider.sweep_leftovers(base)
        out["leftovers_removed"] += len(removed)
        out["leftovers"].extend(removed[: max(0, PROBLEMS_SHOWN - len(out["leftovers"]))])


def _verdict(target: Target, site: str, row: Any, counter: ByteCounter) -> _Verdict:
    location = target.spec.resolve(row.path)
    entry = target.provider.stat(location)
    if entry is None:
        return _Verdict("missing", f"the copy on {site} is missing (found by fsck)")
    seen = (entry.size, entry.mtime, entry.ref)
    if entry.size != row.size:
        counter.add(row.size)
        return _Verdict(
            "corrupt",
            f"corrupt copy on {site}: size {entry.size} bytes, catalog says {row.size} (found by fsck)",
            seen,
        )
    result: HashResult = hash_copy(target.provider, location, row.hash_algo, counter)
    if result.size != row.size or result.digest != row.hash:
        return _Verdict(
            "corrupt",
            f"corrupt copy on {site}: {row.hash_algo} {result.digest[:16]}..., catalog says {row.hash[:16]}... "
            "(found by fsck)",
            seen,
        )
    return _Verdict(None, seen=seen)


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
    observed: dict[int, tuple[int, float | None, str | None]] = {}
    good: list[tuple[int, float | None, tuple[int, float | None, str | None]]] = []
    for row, verdict, exc in run_threaded(rows, lambda r: _verdict(target, site, r, counter), tick, threads):
        out["checked"] += 1
        if isinstance(exc, SiteUnavailableError):
            _record(store, target, site, actor, bad, kinds, out, observed)
            raise exc
        if exc is not None:
            out["unreadable"] += 1
            _problem(out, target, row, "unreadable", describe_error(exc), "left as it is")
        elif verdict.problem is None:
            out["ok"] += 1
            if verdict.seen is not None:
                good.append((row.file_id, row.present_since, verdict.seen))
        else:
            out[verdict.problem] += 1
            bad.append((row.file_id, row.present_since, verdict.reason))
            kinds[row.file_id] = (row, verdict.problem)
            if verdict.seen is not None:
                observed[row.file_id] = verdict.seen
    # the copies just proven good: their storage fingerprint saves later checks a read
    store.remember_fingerprints(site, target.spec.alternatives, good)
    _record(store, target, site, actor, bad, kinds, out, observed)


def _record(
    store: StateStore,
    target: Target,
    site: str,
    actor: str,
    bad: list[tuple[int, float | None, str]],
    kinds: dict[int, tuple[Any, str]],
    out: dict[str, Any],
    observed: dict[int, tuple[int, float | None, str | None]],
) -> None:
    if not bad:
        return
    result = store.lose_copies(site, target.spec.alternatives, bad, actor, "fsck_corrupt", observed=observed)
    out["requeued"] += len(result.requeued)
    out["lost"] += len(result.missing)
    reasons = {fid: reason for fid, _, reason in bad}
    for fid in result.requeued:
        row, problem = kinds[fid]
        _problem(out, target, row, problem, reasons[fid], "queued again from a good copy")
    for fid in result.missing:
        row, problem = kinds[fid]
        _problem(out, target, row, problem, reasons[fid], "lost: no other verified copy")
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
