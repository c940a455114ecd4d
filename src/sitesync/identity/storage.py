"""Proving that a site's roots are its own storage, right now, before anything is written,
deleted or declared lost there.

For each distinct root location of a site (as this machine sees it for one project):

1. the marker at the root is read, and the catalog's record of the marker last seen at that
   location (``storage_markers``) is looked up;
2. no marker and no record: the root is used for the first time; a new marker is written there
   and recorded (like ``git annex init``), provided the catalog records no verified copies below
   it, or some of those it records are really there (an installation from before markers); a root
   where none of them is found is refused, "is the storage mounted?" (an empty mount point);
3. no marker but a record: the storage is not what it was (an unmounted share whose mount point is
   empty, a replaced disk): refused, "is the storage mounted?";
4. a marker of a site outside the site's alternatives group: the root is another site's storage
   under a second name, which would count one physical copy twice: refused;
5. a marker of the site with another id than recorded: a different disk or a copy: refused;
6. a marker of another site in a folder enclosing the root: the root lies inside that site's
   storage: refused.

``force`` (``sitesync site mark --force``, ``validate --force``) writes or replaces the marker
where 3-5 refused, when a person says this storage is the site's; 6 is never forced (change the
root). Sites listed as alternatives of each other are one storage: they share the marker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sitesync.errors import StorageError, StorageIdentityError
from sitesync.identity.markers import Marker, marker_location, markers_above, read_marker, write_marker
from sitesync.machine_view import SiteSpec
from sitesync.providers.base import Provider

OK = "ok"
MARKED = "marked"  # first use: a marker was written now
MISSING = "missing"
FOREIGN = "foreign"
DIFFERENT = "different"
NESTED = "nested"
PROBLEMS = (MISSING, FOREIGN, DIFFERENT, NESTED)
SAMPLE = 20  # recorded copies looked for at a root seen without a marker for the first time


class MarkerRecords(Protocol):
    """What the check needs of the state store."""

    def storage_marker(self, site: str, location: str) -> str | None: ...

    def record_storage_marker(
        self, site: str, location: str, marker_id: str, actor: str, *, replace: bool = True
    ) -> str: ...

    def present_sample(self, project_id: int, site: str, roots: Sequence[str], limit: int = ...) -> list[str]: ...


@dataclass(frozen=True)
class RootCheck:
    location: str
    roots: tuple[str, ...]  # root names with this location
    state: str
    marker: Marker | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.state not in PROBLEMS

    def as_dict(self) -> dict[str, object]:
        return {
            "location": self.location,
            "roots": list(self.roots),
            "state": self.state,
            "marker_site": self.marker.site if self.marker else None,
            "marker_id": self.marker.id if self.marker else None,
            "detail": self.detail,
        }


def check_site_storage(
    store: MarkerRecords,
    spec: SiteSpec,
    provider: Provider,
    actor: str,
    *,
    project_id: int | None,
    force: bool = False,
    write: bool = True,
) -> list[RootCheck]:
    """Check every root location of ``spec`` as the project ``project_id`` maps it (see the module
    docstring). ``write=False`` reports what would be done without writing a marker. Storage
    errors while reading propagate."""
    by_location: dict[str, list[str]] = {}
    for root, base in sorted(spec.roots.items()):
        by_location.setdefault(base, []).append(root)
    group = {spec.name, *spec.alternatives}
    out = []
    for base, roots in by_location.items():
        check = _Check(store, spec, group, provider, base, tuple(roots), actor, project_id)
        out.append(check.run(force, write))
    return out


@dataclass
class _Check:
    store: MarkerRecords
    spec: SiteSpec
    group: set[str]
    provider: Provider
    base: str
    roots: tuple[str, ...]
    actor: str
    project_id: int | None

    def first_use_refused(self) -> str | None:
        """Why a root without a marker and without a record may not be marked now: the catalog
        records verified copies below it and none of a sample of them is there."""
        if self.project_id is None:
            return None
        sample = self.store.present_sample(self.project_id, self.spec.name, self.roots, SAMPLE)
        if not sample:
            return None
        for template in sample:
            if self.provider.stat(self.spec.resolve(template)) is not None:
                return None
        return (
            f"root {self.base} of site {self.spec.name!r} has no sitesync marker, and none of {len(sample)} copies the "
            "catalog records there was found: is the storage mounted? Nothing is written, deleted or declared lost "
            f"there until it is (run `sitesync site mark {self.spec.name} --force` if it really is the site's storage)"
        )

    def run(self, force: bool, write: bool) -> RootCheck:
        return _check_root(self, force, write)


def _check_root(c: _Check, force: bool, write: bool) -> RootCheck:
    store, site, group, provider, base, roots, actor = (
        c.store,
        c.spec.name,
        c.group,
        c.provider,
        c.base,
        c.roots,
        c.actor,
    )
    marker = read_marker(provider, base)
    known = store.storage_marker(site, base)
    for folder, above in markers_above(provider, base):
        if above.site not in group:
            return RootCheck(
                base,
                roots,
                NESTED,
                marker,
                f"root {base} of site {site!r} lies inside the storage of site {above.site!r} (its marker is at "
                f"{marker_location(folder)}); one file there would count as a copy on both sites: give {site!r} a "
                "root outside it, or declare the two sites alternatives (alternative_sites) if they are one storage",
            )
    mark = f"run `sitesync site mark {site} --force` if this storage really is the site's"
    problem: tuple[str, str] | None = None
    if marker is None and known is not None:
        problem = (
            MISSING,
            f"root {base} of site {site!r} has no sitesync marker although one was there before: is the storage "
            f"mounted? Nothing is written, deleted or declared lost there until it is; {mark} (new, empty storage)",
        )
    elif marker is not None and marker.site not in group:
        problem = (
            FOREIGN,
            f"root {base} of site {site!r} carries the marker of site {marker.site!r}: it is that site's storage "
            "under a second name, which would count one physical copy as two; point the root elsewhere, or "
            f"declare the sites alternatives (alternative_sites) if they are one storage reached two ways",
        )
    elif marker is None and known is None and (why := c.first_use_refused()) is not None:
        problem = (MISSING, why)
    elif marker is not None and known is not None and marker.id != known:
        problem = (
            DIFFERENT,
            f"root {base} of site {site!r} carries a marker {marker.id[:8]} of site {marker.site!r}, not the "
            f"{known[:8]} recorded there: a different disk, or a copy of the storage? {mark}",
        )
    if problem is not None and not force:
        return RootCheck(base, roots, problem[0], marker, problem[1])
    if marker is None or problem is not None:
        if not write:
            return RootCheck(base, roots, MARKED, marker, f"a marker would be written at {marker_location(base)}")
        marker = Marker.new(site, actor)
        try:
            write_marker(provider, base, marker)
        except StorageError as exc:
            raise StorageIdentityError(
                f"site {site!r}: cannot write its marker at {marker_location(base)} ({exc}); sitesync needs it to "
                "recognise the storage before it writes or deletes anything there",
                site=site,
            ) from None
        recorded = store.record_storage_marker(site, base, marker.id, actor, replace=problem is not None)
        if recorded != marker.id:
            # another process marked this root at the same moment and recorded its id first: that
            # id stands, and the marker on the storage says so again (ours may have replaced it)
            marker = Marker(site, recorded, time.time(), actor)
            write_marker(provider, base, marker)
        return RootCheck(base, roots, MARKED, marker, f"marker {marker.id[:8]} written at {marker_location(base)}")
    if known is None and store.record_storage_marker(site, base, marker.id, actor, replace=False) != marker.id:
        return RootCheck(
            base,
            roots,
            DIFFERENT,
            marker,
            f"root {base} of site {site!r} is being marked by another process; try again",
        )
    return RootCheck(base, roots, OK, marker, f"marker {marker.id[:8]} of site {marker.site!r}")


def require_site_storage(
    store: MarkerRecords,
    spec: SiteSpec,
    provider: Provider,
    actor: str,
    *,
    project_id: int | None,
    force: bool = False,
) -> list[RootCheck]:
    """``check_site_storage`` that raises ``StorageIdentityError`` (a site condition: the worker
    leaves the site alone for a while, faces refuse the action) at the first root not proven."""
    checks = check_site_storage(store, spec, provider, actor, project_id=project_id, force=force)
    for check in checks:
        if not check.ok:
            raise StorageIdentityError(f"site {spec.name}: {check.detail}", site=spec.name)
    return checks


def usable_site(store: MarkerRecords, spec: SiteSpec, provider: Provider, actor: str, project_id: int | None) -> None:
    """What a worker checks before it uses a site: reachable (``provider.check()``) and proven to be
    the site's own storage. Raises ``SiteUnavailableError`` (or its ``StorageIdentityError``)."""
    provider.check()
    require_site_storage(store, spec, provider, actor, project_id=project_id)


STILL_MARKED_SECONDS = 10.0
_still_marked: dict[tuple[int, str], float] = {}
_still_lock = threading.Lock()


def still_marked(provider: Provider, path: str) -> None:
    """Before a worker writes ``path``: the marker of the root holding it is still there (checked
    at most every ``STILL_MARKED_SECONDS`` per root). A share unmounted while the worker runs leaves
    an empty mount point: the write must not land on the local disk under it. Raises
    ``StorageIdentityError`` (the site is left alone for a while)."""
    base = next((b for b in sorted(provider.roots.values(), key=len, reverse=True) if _below(path, b)), None)
    if base is None:
        return
    key = (id(provider), base)
    now = time.monotonic()
    with _still_lock:
        if now - _still_marked.get(key, -STILL_MARKED_SECONDS) < STILL_MARKED_SECONDS:
            return
    if provider.stat(marker_location(base)) is None:
        with _still_lock:
            _still_marked.pop(key, None)
        raise StorageIdentityError(
            f"site {provider.site}: the marker at root {base} is gone: is the storage still mounted? "
            "Nothing is written there until it is back",
            site=provider.site,
        )
    with _still_lock:
        _still_marked[key] = now


def _below(path: str, base: str) -> bool:
    stripped = base.rstrip("/\\")
    return path.startswith(stripped) and len(path) > len(stripped) and path[len(stripped)] in "/\\"


__all__ = [
    "DIFFERENT",
    "FOREIGN",
    "MARKED",
    "MISSING",
    "NESTED",
    "OK",
    "RootCheck",
    "check_site_storage",
    "require_site_storage",
    "still_marked",
    "usable_site",
]
