"""Change detection of a work area: TEMPORARY thin version, written by wf-core against the contract
agreed with the ``wf-scan`` branch, which owns this module and replaces it on merge.

It walks with ``provider.list`` (no watcher, no open-for-writing probe), compares each file's stat
facts (size, mtime, file id) with the previous scan's, hashes only what changed, and leaves files
whose modification time is within ``settle_seconds`` of now, or that change while being hashed,
for the next scan (``unstable``). Renames are a deletion and a creation with the same file id and
hash.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sitesync.hashing import DEFAULT_ALGORITHM
from sitesync.identity.content import hash_stored
from sitesync.providers.base import Entry, Provider


@dataclass(frozen=True, slots=True)
class FileFacts:
    path: str  # posix, relative to the project's folder on the root
    size: int
    mtime_ns: int
    file_id: int  # inode number (0 where the storage has none)
    hash: str | None  # hashing.DEFAULT_ALGORITHM hex digest (None only if not hashed)


@dataclass
class ScanResult:
    new: list[FileFacts] = field(default_factory=list)
    modified: list[FileFacts] = field(default_factory=list)
    deleted: list[FileFacts] = field(default_factory=list)
    renamed: list[tuple[FileFacts, FileFacts]] = field(default_factory=list)
    unstable: list[str] = field(default_factory=list)
    unchanged: int = 0
    facts: dict[str, FileFacts] = field(default_factory=dict)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class WorkAreaSelector:
    """Which files under a project folder are workfiles: ``paths`` globs (relative, ``**`` spans
    folders) minus ``ignore``: a pattern without ``/`` matches a file name, one ending in ``/`` a
    folder name, anywhere; others the whole relative path."""

    def __init__(self, paths: list[str], ignore: list[str]) -> None:
        self._paths = [_glob_regex(p) for p in paths]
        self._names = [p for p in ignore if "/" not in p]
        self._folders = [p.rstrip("/") for p in ignore if p.endswith("/") and "/" not in p.rstrip("/")]
        self._globs = [_glob_regex(p.rstrip("/")) for p in ignore if "/" in p.rstrip("/")]

    def wants(self, relpath: str) -> bool:
        if not any(p.match(relpath) for p in self._paths):
            return False
        parts = relpath.split("/")
        if any(fnmatch.fnmatchcase(parts[-1], p) for p in self._names):
            return False
        if any(fnmatch.fnmatchcase(part, p) for part in parts[:-1] for p in self._folders):
            return False
        return not any(
            g.match(relpath) or any(g.match("/".join(parts[:n])) for n in range(1, len(parts))) for g in self._globs
        )


def _file_id(entry: Entry) -> int:
    ref = entry.ref or ""
    if ref.startswith("ino:") and ref[4:].isdigit():
        return int(ref[4:])
    return 0


def _facts(entry: Entry, rel: str, digest: str | None) -> FileFacts:
    return FileFacts(rel, entry.size, int((entry.mtime or 0.0) * 1e9), _file_id(entry), digest)


def _same(a: FileFacts, entry: Entry) -> bool:
    return a.size == entry.size and a.mtime_ns == int((entry.mtime or 0.0) * 1e9) and a.file_id == _file_id(entry)


def _look(
    provider: Provider,
    base: str,
    rel: str,
    entry: Entry,
    previous: Mapping[str, FileFacts],
    result: ScanResult,
    settle_seconds: float,
    now: float,
) -> None:
    before = previous.get(rel)
    if before is not None and _same(before, entry) and before.hash is not None:
        result.unchanged += 1
        result.facts[rel] = before
        return
    if entry.mtime is not None and 0 <= now - entry.mtime < settle_seconds:  # a future time proves nothing
        result.unstable.append(rel)
        if before is not None:
            result.facts[rel] = before
        return
    path = posixpath.join(base, rel)
    size, digest = hash_stored(provider, path, DEFAULT_ALGORITHM)
    after = provider.stat(path)
    if after is None or after.size != entry.size or after.mtime != entry.mtime or size != entry.size:
        result.unstable.append(rel)  # changed while it was read: not taken half-written
        if before is not None:
            result.facts[rel] = before
        return
    facts = _facts(entry, rel, digest)
    result.facts[rel] = facts
    (result.new if before is None else result.modified).append(facts)


def _pair_renames(result: ScanResult) -> None:
    gone = {(f.file_id, f.hash): f for f in result.deleted if f.file_id}
    for facts in list(result.new):
        old = gone.pop((facts.file_id, facts.hash), None) if facts.file_id else None
        if old is not None:
            result.new.remove(facts)
            result.deleted.remove(old)
            result.renamed.append((old, facts))


def scan_work_area(
    provider: Provider,
    base: str,
    selector: WorkAreaSelector,
    previous: Mapping[str, FileFacts],
    *,
    settle_seconds: float = 2.0,
) -> ScanResult:
    """Every workfile under ``base`` (the project's folder on one root of the site) compared with
    the previous scan's facts."""
    result = ScanResult()
    now = time.time()
    prefix = base.rstrip("/") + "/"
    for entry in provider.list(base):
        rel = entry.path[len(prefix) :] if entry.path.startswith(prefix) else entry.path
        if selector.wants(rel):
            _look(provider, base, rel, entry, previous, result, settle_seconds, now)
    result.deleted = [f for p, f in previous.items() if p not in result.facts and selector.wants(p)]
    _pair_renames(result)
    return result


def scan_paths(
    provider: Provider,
    base: str,
    selector: WorkAreaSelector,
    previous: Mapping[str, FileFacts],
    changed: Iterable[str],
    *,
    settle_seconds: float = 2.0,
) -> ScanResult:
    """Only the given relative paths (a watcher's hint); files not listed keep their previous facts."""
    result = ScanResult(facts=dict(previous))
    now = time.time()
    for rel in dict.fromkeys(changed):
        if not selector.wants(rel):
            continue
        result.facts.pop(rel, None)
        entry = provider.stat(posixpath.join(base, rel))
        if entry is None:
            if rel in previous:
                result.deleted.append(previous[rel])
            continue
        _look(provider, base, rel, entry, previous, result, settle_seconds, now)
    _pair_renames(result)
    return result


__all__ = ["FileFacts", "ScanResult", "WorkAreaSelector", "scan_paths", "scan_work_area"]
