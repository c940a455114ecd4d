"""What ``validate`` and ``fsck`` share: choosing the projects a site is checked for, reporting
progress, and hashing stored copies with the catalog's algorithm in a few threads.

A site that cannot be reached is *unknown*, never *absent*: checks refuse to start (or stop) and
record nothing about it. Neither do they on storage not proven to be the site's own (its marker
missing: not mounted? another site's marker: the same storage under two names), unless ``force``
says it is. A disabled project, or a site disabled in a project, is skipped.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sitesync.errors import InvalidInputError, NotFoundError, SitesyncError, StorageIdentityError
from sitesync.identity.content import hash_stored
from sitesync.identity.storage import require_site_storage
from sitesync.machine_view import MachineView, ProjectView, ProviderPool, SiteSpec
from sitesync.providers.base import Provider
from sitesync.settings.models import STUDIO
from sitesync.state.records import ProjectRow
from sitesync.state.store import StateStore

T = TypeVar("T")
HASH_THREADS = 4
PROGRESS_EVERY = 0.2  # seconds between progress reports


@dataclass(frozen=True)
class ProgressUpdate:
    """A long check's progress: ``done`` of ``total`` (None while unknown) ``unit`` in ``phase``."""

    phase: str
    done: int
    total: int | None
    unit: str  # "files" or "bytes"


ProgressFn = Callable[[ProgressUpdate], None]


class Reporter:
    """Calls the caller's progress function, at most every ``PROGRESS_EVERY`` seconds per phase."""

    def __init__(self, fn: ProgressFn | None) -> None:
        self.fn = fn
        self._last: dict[str, float] = {}

    def __call__(self, phase: str, done: int, total: int | None, unit: str, *, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        if not force and now - self._last.get(phase, 0.0) < PROGRESS_EVERY:
            return
        self._last[phase] = now
        self.fn(ProgressUpdate(phase, done, total, unit))


@dataclass
class Target:
    """One project a site is checked for."""

    project: ProjectRow
    view: ProjectView
    spec: SiteSpec
    provider: Provider


@dataclass
class Targets:
    site: str
    targets: list[Target] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def select_targets(
    store: StateStore,
    view: MachineView,
    pool: ProviderPool,
    site: str,
    project: str | None,
    action: str,
    *,
    actor: str = "sitesync",
    force: bool = False,
) -> Targets:
    """The projects ``site`` is checked for (``project``, or every project), each with a reachable
    provider. With ``project`` given, anything that prevents the check is a ``UserError``; over
    every project, such projects are listed as skipped with the reason. Storage not proven to be
    the site's (``identity.storage``) refuses the whole check unless ``force``."""
    name = view.normalize_site(site)
    if name not in (STUDIO, view.site_id) and name not in view.system.sites:
        raise NotFoundError(f"unknown site {site!r}; see `sitesync site list`")
    rows = [store.project(project)] if project else store.projects()
    out = Targets(name)
    for row in rows:
        reason, target = _target(view, pool, row, name, action)
        if target is not None:
            try:
                require_site_storage(store, target.spec, target.provider, actor, project_id=row.id, force=force)
            except StorageIdentityError as exc:
                raise InvalidInputError(
                    f"refused to {action} site {name!r}: {exc}; nothing was recorded (--force checks it anyway)"
                ) from None
            out.targets.append(target)
            continue
        if project:
            raise InvalidInputError(f"cannot {action} site {name!r} for project {row.name!r}: {reason}")
        out.skipped.append({"project": row.name, "reason": reason or "skipped"})
    return out


def _target(
    view: MachineView, pool: ProviderPool, row: ProjectRow, site: str, action: str
) -> tuple[str | None, Target | None]:
    try:
        pv = view.project(row.name)
    except SitesyncError as exc:
        return f"its settings are invalid ({exc})", None
    if not pv.settings.enabled:
        return (
            f"the project is disabled; enable it with `sitesync settings set --project {row.name} enabled true`",
            None,
        )
    spec = pv.sites.get(site)
    if spec is None:
        return f"site {site!r} is not known in this project", None
    if not spec.enabled:
        return (
            f"site {site!r} is disabled in this project "
            f"(`sitesync settings set --project {row.name} sites.{site}.enabled true` turns it on)"
        ), None
    if not spec.reachable:
        return f"site {site!r} is not reachable from this machine ({spec.reason}); {action} it where it is", None
    try:
        provider = pool.get(spec)
        provider.check()
    except SitesyncError as exc:
        return f"the site cannot be reached now ({exc}); nothing was recorded", None
    except Exception as exc:  # a provider bug: unknown, never absent
        return f"the site cannot be used ({type(exc).__name__}: {exc}); nothing was recorded", None
    return None, Target(row, pv, spec, provider)


@dataclass(frozen=True)
class HashResult:
    size: int
    digest: str


class ByteCounter:
    """Bytes hashed so far, added from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.value += n


def hash_copy(provider: Provider, path: str, algorithm: str, counter: ByteCounter | None = None) -> HashResult:
    """Read a stored copy to its end through the catalog's hasher."""
    return HashResult(*hash_stored(provider, path, algorithm, counter.add if counter else None))


def run_threaded(
    items: Iterable[T],
    work: Callable[[T], Any],
    on_tick: Callable[[], None],
    threads: int = HASH_THREADS,
) -> Iterator[tuple[T, Any, BaseException | None]]:
    """Run ``work`` over ``items`` in a few threads; yield (item, result, error) as they finish,
    calling ``on_tick`` from this thread while waiting (progress reports)."""
    with cf.ThreadPoolExecutor(max(1, threads), thread_name_prefix="sitesync-check") as pool:
        pending = {pool.submit(work, item): item for item in items}
        try:
            while pending:
                done, _ = cf.wait(list(pending), timeout=PROGRESS_EVERY, return_when=cf.FIRST_COMPLETED)
                on_tick()
                for fut in done:
                    item = pending.pop(fut)
                    exc = fut.exception()
                    yield item, (None if exc else fut.result()), exc
        finally:  # the caller stopped early (site gone): do not start the rest
            for fut in pending:
                fut.cancel()


def describe_error(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SitesyncError) else f"{type(exc).__name__}: {exc}"


__all__ = [
    "ByteCounter",
    "HashResult",
    "ProgressFn",
    "ProgressUpdate",
    "Reporter",
    "Target",
    "Targets",
    "describe_error",
    "hash_copy",
    "run_threaded",
    "select_targets",
]
