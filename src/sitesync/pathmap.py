"""Mapping a path from one site to another: the farm and DCC side of roots.

A render job carries paths from the artist's machine (their local site, or the studio share as
their OS mounts it, perhaps a Windows drive letter while the farm runs Linux). ``locate`` finds
which site root a path lies under — any site of any project, on any platform's roots, or a
catalog path ``{root[work]}/...`` — and gives the catalog path; ``SiteSpec.resolve`` of the target
site then gives the same file there. Matching is lexical (``..`` collapsed, Windows paths compared
without regard to case and separator) plus, for this machine's own file systems, through symlinks.
The longest matching root wins; the catalog path is validated like every other, so nothing maps
outside a root.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from sitesync.errors import PathTemplateError, SitesyncError
from sitesync.machine_view import MachineView, ProjectView
from sitesync.paths import RootedPath
from sitesync.settings.models import PLATFORMS

_WINDOWS_RE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\|//)")


@dataclass(frozen=True)
class Located:
    """Where a path lies: which project's site root (on which platform), as a catalog path."""

    project: str
    site: str
    platform: str
    base: str
    template: str


def is_windows_path(path: str) -> bool:
    return bool(_WINDOWS_RE.match(path)) or ("\\" in path and "/" not in path)


def _forms(path: str) -> tuple[str, str, bool]:
    """(normalised path, its form for comparison, whether it is a Windows path). Windows paths use
    '/' and compare without regard to case."""
    if is_windows_path(path):
        shown = ntpath.normpath(path).replace("\\", "/").rstrip("/")
        return shown, shown.lower(), True
    shown = posixpath.normpath(path)
    shown = shown.rstrip("/") or "/"
    return shown, shown, False


def relative_under(path: str, base: str) -> str | None:
    """The POSIX relative part of ``path`` below ``base`` (lexically), or None."""
    shown, compared, windows = _forms(path)
    _b, base_compared, base_windows = _forms(base)
    if windows != base_windows or not base_compared:
        return None
    prefix = base_compared.rstrip("/") + "/"
    if not compared.startswith(prefix):
        return None
    return shown[len(prefix) :] or None


def _views(view: MachineView, projects: Iterable[str]) -> list[tuple[str, ProjectView]]:
    """Each project as every platform sees it (this machine's platform first)."""
    out = []
    platforms = [view.platform, *(p for p in PLATFORMS if p != view.platform)]
    for platform in platforms:
        pview = (
            view
            if platform == view.platform
            else MachineView(view.docs, view.local, view.site_id, view.paths, platform)
        )
        for name in projects:
            try:
                out.append((platform, pview.project(name)))
            except SitesyncError:  # a project whose settings do not resolve has no roots to match
                continue
    return out


def locate(path: str, view: MachineView, projects: Iterable[str]) -> list[Located]:
    """Every (project, site) root holding ``path``, longest base first; a catalog path matches
    every project (its root names it)."""
    names = list(projects)
    if path.startswith("{root["):
        rooted = RootedPath.parse(path)
        return [Located(name, "", view.platform, "", rooted.template) for name in names]
    candidates = [path]
    if not is_windows_path(path) and not path.startswith("/"):
        candidates = [os.path.abspath(os.path.expanduser(path))]
    if not is_windows_path(candidates[0]):
        real = os.path.realpath(candidates[0])
        if real != candidates[0]:
            candidates.append(real)
    found: dict[tuple[str, str, str], Located] = {}
    for platform, pv in _views(view, names):
        for site, spec in pv.sites.items():
            for root, base in spec.roots.items():
                bases = [base]
                if platform == view.platform and spec.provider == "local_drive" and not is_windows_path(base):
                    bases.append(os.path.realpath(base))
                for b in bases:
                    for candidate in candidates:
                        rel = relative_under(candidate, b)
                        if rel is None:
                            continue
                        try:
                            template = RootedPath.parse(f"{{root[{root}]}}/{rel}").template
                        except PathTemplateError:
                            continue
                        key = (pv.name, site, template)
                        if key not in found or len(b) > len(found[key].base):
                            found[key] = Located(pv.name, site, platform, b, template)
    return sorted(found.values(), key=lambda x: -len(x.base))


__all__ = ["Located", "is_windows_path", "locate", "relative_under"]
