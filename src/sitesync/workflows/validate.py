"""``validate SITE``: make the catalog agree with what a site really holds.

1. **Walk** every root of the site (``provider.list``), once per distinct root location even when
   several projects share it. Each listed file is looked up in the catalog by path (the
   ``path_key`` index), in batches.
2. **Register** files already there that the catalog does not count as verified copies on the site
   (absent, queued, failed, waiting for a source or lost there): each is hashed with the catalog's algorithm and, when size and
   hash match, recorded present on the site and its alternatives without copying a byte. That is
   how a newly attached drive is seeded. A file whose content differs is left alone (the engine
   replaces it when the file is wanted there).
3. **Detect losses**: a verified copy the catalog records on the site that the walk did not find
   (confirmed with ``stat``) or whose size is wrong is no longer trusted: it is queued again where
   another verified copy exists, otherwise it is ``missing``: the file is lost on that site (restore
   it and validate again, or publish again). Copies that became present after the walk started are
   never judged by it.

Nothing of this starts before the site's storage is proven to be its own (its marker, see
``identity/storage.py``): an unmounted share must not look like every file lost. ``force`` skips
that proof (and marks the storage as the site's).

Files under the roots that no project's catalog knows are counted as untracked and left alone.
Memory grows with the files checked (one set of ids), not with the catalog.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sitesync.errors import SitesyncError, SiteUnavailableError, StorageError
from sitesync.identity.markers import is_marker_name
from sitesync.machine_view import MachineView, ProviderPool, SiteSpec
from sitesync.providers.base import Entry, Provider
from sitesync.state.schema import NOT_HELD
from sitesync.state.store import StateStore
from sitesync.state.workflows import SiteFile
from sitesync.workflows.checks_common import (
    ByteCounter,
    ProgressFn,
    Reporter,
    Target,
    describe_error,
    hash_copy,
    run_threaded,
    select_targets,
)

LOOKUP_BATCH = 1000
EXAMPLES = 20


@dataclass
class _Walk:
    """One root location listed once, and which (project, root name) pairs map onto it."""

    spec: SiteSpec
    provider: Provider
    base: str
    roots: dict[str, set[int]] = field(default_factory=dict)  # root name -> project ids


@dataclass
class _Summary:
    site: str
    projects: list[str]
    skipped: list[dict[str, str]]
    listed: int = 0
    untracked: int = 0
    already_present: int = 0
    registered: int = 0
    differs: int = 0
    missing: int = 0
    requeued: int = 0
    lost: int = 0
    unreadable: int = 0
    examples: dict[str, list[Any]] = field(
        default_factory=lambda: {"untracked": [], "differs": [], "missing": [], "unreadable": []}
    )
    # file id -> (size, mtime, ref) of a wrong copy as seen: its re-fetch replaces exactly that file
    observed: dict[int, tuple[int, float | None, str | None]] = field(default_factory=dict)

    def example(self, kind: str, value: Any) -> None:
        if len(self.examples[kind]) < EXAMPLES:
            self.examples[kind].append(value)


def relative_to(path: str, base: str) -> str | None:
    """The catalog-style (``/``-separated) part of a listed ``path`` below the root ``base``."""
    stripped = base.rstrip("/\\")
    if not path.startswith(stripped) or len(path) <= len(stripped) + 1 or path[len(stripped)] not in "/\\":
        return None
    rel = path[len(stripped) + 1 :]
    # Windows paths come back with backslashes; on POSIX a backslash is an ordinary character
    return rel.replace("\\", "/") if os.sep == "\\" or "\\" in stripped else rel


def validate_site(
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
    started = time.time()
    clock = time.monotonic()
    chosen = select_targets(store, view, pool, site, project, "validate", actor=actor, force=force)
    name = chosen.site
    summary = _Summary(name, [t.project.name for t in chosen.targets], chosen.skipped)
    report = Reporter(progress)
    interrupted = None
    try:
        seen = _walk_and_register(store, chosen.targets, name, actor, started, summary, report, threads)
        report("check", 0, None, "files", force=True)
        for target in chosen.targets:
            _find_losses(store, target, name, actor, started, seen, summary, report)
    except SiteUnavailableError as exc:
        interrupted = f"site {name} became unreachable: {exc}; run validate again when it is back"
    except StorageError as exc:  # listing failed: what was recorded stands, losses were not judged
        interrupted = f"listing site {name} failed: {exc}; run validate again"
    return {
        "site": name,
        "projects": summary.projects,
        "skipped": summary.skipped,
        "listed": summary.listed,
        "untracked": summary.untracked,
        "already_present": summary.already_present,
        "registered": summary.registered,
        "differs": summary.differs,
        "missing": summary.missing,
        "requeued": summary.requeued,
        "lost": summary.lost,
        "unreadable": summary.unreadable,
        "examples": summary.examples,
        "interrupted": interrupted,
        "seconds": round(time.monotonic() - clock, 3),
    }


def _walks(targets: Sequence[Target]) -> list[_Walk]:
    walks: dict[tuple[str, str], _Walk] = {}
    for t in targets:
        for root, base in t.spec.roots.items():
            walk = walks.setdefault((t.spec.cache_key(), base), _Walk(t.spec, t.provider, base))
            walk.roots.setdefault(root, set()).add(t.project.id)
    return list(walks.values())


def _walk_and_register(
    store: StateStore,
    targets: Sequence[Target],
    site: str,
    actor: str,
    started: float,
    summary: _Summary,
    report: Reporter,
    threads: int,
) -> dict[int, set[int]]:
    """Walk every root; register copies found; return the file ids seen per project."""
    seen: dict[int, set[int]] = {t.project.id: set() for t in targets}
    lost_by_project: dict[int, list[tuple[int, float | None, str]]] = {}
    for walk in _walks(targets):
        batch: list[tuple[dict[str, set[int]], Entry]] = []
        for entry in walk.provider.list(walk.base):
            summary.listed += 1
            report("walk", summary.listed, None, "files")
            rel = relative_to(entry.path, walk.base)
            if rel is not None and is_marker_name(rel):
                summary.listed -= 1  # the site's own marker, not a file
                continue
            if rel is None:
                summary.untracked += 1
                continue
            batch.append(({f"{{root[{root}]}}/{rel}": pids for root, pids in walk.roots.items()}, entry))
            if len(batch) >= LOOKUP_BATCH:
                _check_batch(store, walk, batch, site, actor, started, seen, lost_by_project, summary, report, threads)
                batch = []
        _check_batch(store, walk, batch, site, actor, started, seen, lost_by_project, summary, report, threads)
    report("walk", summary.listed, summary.listed, "files", force=True)
    by_target = {t.project.id: t for t in targets}
    for pid, lost in lost_by_project.items():
        _record_lost(store, by_target[pid], site, actor, lost, summary)
    return seen


def _check_batch(
    store: StateStore,
    walk: _Walk,
    batch: list[tuple[dict[str, set[int]], Entry]],
    site: str,
    actor: str,
    started: float,
    seen: dict[int, set[int]],
    lost: dict[int, list[tuple[int, float | None, str]]],
    summary: _Summary,
    report: Reporter,
    threads: int,
) -> None:
    if not batch:
        return
    entry_of: dict[str, tuple[Entry, set[int]]] = {}
    for templates, entry in batch:
        for template, pids in templates.items():
            entry_of[template] = (entry, pids)
    matches = store.files_at_paths(list(entry_of), site)
    tracked: set[str] = set()
    to_hash: list[tuple[SiteFile, Entry]] = []
    for f in matches:
        entry, pids = entry_of[f.path]
        tracked.add(entry.path)
        if f.project_id not in pids:
            continue  # another project's file (or this path through another root mapping)
        seen[f.project_id].add(f.file_id)
        if f.status == "present":
            if entry.size == f.size:
                summary.already_present += 1
            elif (f.present_since or 0) < started:
                reason = f"the copy on {site} has the wrong size ({entry.size} bytes, catalog says {f.size}; found by validate)"
                lost.setdefault(f.project_id, []).append((f.file_id, f.present_since, reason))
                summary.observed[f.file_id] = (entry.size, entry.mtime, entry.ref)
        elif f.status is None or f.status in NOT_HELD:
            if entry.size == f.size:
                to_hash.append((f, entry))
            else:
                summary.differs += 1
                summary.example("differs", {"path": f.path, "reason": f"size {entry.size}, catalog says {f.size}"})
        # in_progress / removing: a transfer or removal owns the record right now
    for _templates, entry in batch:
        if entry.path not in tracked:
            summary.untracked += 1
            summary.example("untracked", entry.path)
    if to_hash:
        _hash_and_register(store, walk, to_hash, site, actor, summary, report, threads)


def _hash_and_register(
    store: StateStore,
    walk: _Walk,
    to_hash: list[tuple[SiteFile, Entry]],
    site: str,
    actor: str,
    summary: _Summary,
    report: Reporter,
    threads: int,
) -> None:
    counter = ByteCounter()
    total = sum(f.size for f, _ in to_hash)

    def work(item: tuple[SiteFile, Entry]) -> Any:
        f, entry = item
        return hash_copy(walk.provider, entry.path, f.hash_algo, counter)

    found: list[SiteFile] = []
    for (f, entry), result, exc in run_threaded(
        to_hash, work, lambda: report("hash", counter.value, total, "bytes"), threads
    ):
        if isinstance(exc, SiteUnavailableError):
            raise exc
        if exc is not None:
            summary.unreadable += 1
            summary.example("unreadable", {"path": entry.path, "error": describe_error(exc)})
        elif result.size == f.size and result.digest == f.hash:
            found.append(f)
        else:
            summary.differs += 1
            summary.example("differs", {"path": f.path, "reason": f"content differs from the catalog ({f.hash_algo})"})
    report("hash", counter.value, total, "bytes", force=True)
    if found:
        entries = {f.file_id: entry for f, entry in to_hash}
        prints = {f.file_id: (entries[f.file_id].mtime, entries[f.file_id].ref) for f in found}
        summary.registered += store.register_present(
            site, walk.spec.alternatives, found, actor, "validate", fingerprints=prints
        )


def _find_losses(
    store: StateStore,
    target: Target,
    site: str,
    actor: str,
    started: float,
    seen: dict[int, set[int]],
    summary: _Summary,
    report: Reporter,
) -> None:
    """Verified copies recorded on the site that the walk did not find."""
    total, _bytes = store.present_totals(target.project.id, site)
    done = 0
    lost: list[tuple[int, float | None, str]] = []
    mine = seen.get(target.project.id, set())
    for rows in store.present_windows(target.project.id, site):
        for row in rows:
            done += 1
            report("check", done, total, "files")
            if row.file_id in mine or (row.present_since or 0) >= started:
                continue
            try:
                entry = target.provider.stat(target.spec.resolve(row.path))
            except SiteUnavailableError:
                raise
            except SitesyncError as exc:
                summary.unreadable += 1
                summary.example("unreadable", {"path": row.path, "error": describe_error(exc)})
                continue
            if entry is not None and entry.size == row.size:
                summary.already_present += 1  # the listing missed it; it is there
                continue
            reason = (
                f"the copy on {site} is missing (found by validate)"
                if entry is None
                else f"the copy on {site} has the wrong size ({entry.size} bytes, catalog says {row.size}; found by validate)"
            )
            lost.append((row.file_id, row.present_since, reason))
            if entry is not None:
                summary.observed[row.file_id] = (entry.size, entry.mtime, entry.ref)
    report("check", done, total, "files", force=True)
    _record_lost(store, target, site, actor, lost, summary)


def _record_lost(
    store: StateStore,
    target: Target,
    site: str,
    actor: str,
    lost: list[tuple[int, float | None, str]],
    summary: _Summary,
) -> None:
    if not lost:
        return
    result = store.lose_copies(
        site, target.spec.alternatives, lost, actor, "validate_missing", observed=summary.observed
    )
    summary.missing += len(result.requeued) + len(result.missing)
    summary.requeued += len(result.requeued)
    summary.lost += len(result.missing)
    reasons = {fid: reason for fid, _, reason in lost}
    for fid in [*result.requeued, *result.missing]:
        summary.example(
            "missing",
            {
                "file_id": fid,
                "reason": reasons[fid],
                "action": "queued again" if fid in result.requeued else "lost: no other copy",
            },
        )


__all__ = ["relative_to", "validate_site"]
