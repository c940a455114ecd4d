"""Which files of a project folder are workfiles: the work-area path patterns and ignore patterns.

Patterns are gitignore-like (``pathspec``'s ``gitwildmatch``), relative to the project's folder on
a root: ``**`` spans folders, a pattern ending in ``/`` ignores a folder and everything below it, a
pattern without ``/`` matches a name at any depth, ``!pattern`` re-includes (but, as in git, not
below an ignored folder). ``prunes`` lets the scanner skip whole folders: an ignored folder, or one
below which no path pattern can match (``assets/*/work/**`` never needs ``shots/``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import pathspec

DEFAULT_PATHS: tuple[str, ...] = ("**/work/**",)
# DCC noise: editor swap and backup files, autosaves, temporary and lock files, Maya's swatches and
# incremental saves, backup folders. A project's ``workfiles.ignore`` replaces this list.
DEFAULT_IGNORE: tuple[str, ...] = (
    "*.swp",
    "*.swo",
    "*~",
    "*.autosave",
    "*.tmp",
    "*.lock",
    ".DS_Store",
    "Thumbs.db",
    ".mayaSwatches/",
    "incrementalSave/",
    "backup/",
)


class WorkAreaSelector:
    """The work areas of one project: ``paths`` (where workfiles are) minus ``ignore``."""

    def __init__(self, paths: list[str], ignore: list[str]) -> None:
        self.paths = list(paths)
        self.ignore = list(ignore)
        self._paths = pathspec.PathSpec.from_lines("gitwildmatch", self.paths)
        self._ignore = pathspec.PathSpec.from_lines("gitwildmatch", self.ignore)
        self._segments = [_segments(p) for p in self.paths if _positive(p)]
        self._prune_memo: dict[str, bool] = {}

    @classmethod
    def default(cls) -> WorkAreaSelector:
        return cls(list(DEFAULT_PATHS), list(DEFAULT_IGNORE))

    def wants(self, relpath: str) -> bool:
        """Whether the file ``relpath`` (``/``-separated, relative to the project folder) is a workfile."""
        return self._paths.match_file(relpath) and not self._ignore.match_file(relpath)

    def ignores_folder(self, reldir: str) -> bool:
        """Whether the folder ``reldir`` is ignored (with everything below it)."""
        return self._ignore.match_file(reldir.rstrip("/") + "/")

    def prunes(self, reldir: str) -> bool:
        """Whether the scanner may skip the folder ``reldir`` entirely: it is ignored, or no path
        pattern can match a file below it."""
        memo = self._prune_memo.get(reldir)
        if memo is None:
            memo = self.ignores_folder(reldir) or not self._could_match_below(reldir)
            if len(self._prune_memo) < 100_000:
                self._prune_memo[reldir] = memo
        return memo

    def _could_match_below(self, reldir: str) -> bool:
        folders = [p for p in reldir.strip("/").split("/") if p]
        return any(_could_extend(pattern, 0, folders, 0) for pattern in self._segments)


def _positive(pattern: str) -> bool:
    text = pattern.strip()
    return bool(text) and not text.startswith("#") and not text.startswith("!")


def _segments(pattern: str) -> list[str]:
    """A path pattern as folder segments, unanchored patterns (no ``/`` but at the end) made to
    match at any depth. A segment with a character class or escape becomes ``*`` (fnmatch and
    gitwildmatch differ there; the pruning stays conservative)."""
    text = pattern.strip()
    anchored = "/" in text.rstrip("/")
    parts = [p for p in text.strip("/").split("/") if p]
    parts = ["*" if ("[" in p or "\\" in p) else p for p in parts]
    return parts if anchored else ["**", *parts]


def _could_extend(pattern: list[str], pi: int, folders: list[str], fi: int) -> bool:
    """Whether some path below ``folders`` can match ``pattern[pi:]`` from ``folders[fi:]``."""
    while True:
        if fi == len(folders) or pi == len(pattern):
            # below the folder anything may follow; a pattern matched by the folder itself takes
            # everything below it (gitignore semantics)
            return True
        segment = pattern[pi]
        if segment == "**":
            return _could_extend(pattern, pi + 1, folders, fi) or _could_extend(pattern, pi, folders, fi + 1)
        if not fnmatch.fnmatchcase(folders[fi], segment):
            return False
        pi += 1
        fi += 1


def selector_for(paths: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> WorkAreaSelector:
    """A selector with the defaults where ``paths`` or ``ignore`` is None."""
    return WorkAreaSelector(
        list(DEFAULT_PATHS if paths is None else paths), list(DEFAULT_IGNORE if ignore is None else ignore)
    )


__all__ = ["DEFAULT_IGNORE", "DEFAULT_PATHS", "WorkAreaSelector", "selector_for"]
