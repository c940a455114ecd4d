"""Which files of a project folder are workfiles: the work-area path patterns and ignore patterns.

Patterns are gitignore-like, relative to the project's folder on
a root (``pathspec``'s ``gitignore`` patterns): ``**`` spans folders, a pattern ending in ``/`` ignores a folder and everything below it, a
pattern without ``/`` matches a name at any depth, ``!pattern`` re-includes (but, as in git, not
below an ignored folder). ``prunes`` lets the scanner skip whole folders: an ignored folder, or one
below which no path pattern can match (``assets/*/work/**`` never needs ``shots/``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable

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
        self._paths = _Spec(self.paths)
        self._ignore = _Spec(self.ignore)
        self._segments = [_segments(p) for p in self.paths if _positive(p)]
        self._prune_memo: dict[str, bool] = {}

    @classmethod
    def default(cls) -> WorkAreaSelector:
        return cls(list(DEFAULT_PATHS), list(DEFAULT_IGNORE))

    def wants(self, relpath: str) -> bool:
        """Whether the file ``relpath`` (``/``-separated, relative to the project folder) is a workfile."""
        folder, _, name = relpath.rpartition("/")
        return self._paths.match_parts(relpath, folder, name) and not self._ignore.match_parts(relpath, folder, name)

    def walk_matcher(self) -> Callable[[str], bool]:
        """``wants`` for many paths in a walk's order (a folder's files one after the other): the
        folder part is decided once per run of paths in the same folder. Not thread-safe: one per walk."""
        paths, ignore = self._paths, self._ignore
        if not (paths.fast and ignore.fast):
            return self.wants
        last: list[object] = [None, False, False]  # folder, wanted by a folder pattern, ignored folder

        def wants(relpath: str) -> bool:
            folder, _, name = relpath.rpartition("/")
            if folder != last[0]:
                last[0], last[1], last[2] = folder, paths.folder_hit(folder), ignore.folder_hit(folder)
            if last[2]:
                return False
            if not last[1] and not paths.name_or_path_hit(relpath, name):
                return False
            return not ignore.name_or_path_hit(relpath, name)

        return wants

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


class _Spec:
    """A ``gitwildmatch`` pattern list, matched fast. Matching each of a dozen patterns in turn was
    most of the cost of scanning an unchanged tree; without ``!`` patterns (then any match decides)
    the patterns' own regular expressions are split by what they can depend on, exactly:

    * a pattern whose expression ends in ``/`` (``backup/``, ``**/work/**``) matches a path only
      through a folder of it: it is tried once per folder (``folder + "/"``, memoized);
    * a pattern without ``/`` (``*.swp``) matches the file's name or one of its folders' names:
      the folder part above, plus, on the name, a set of plain names (``Thumbs.db``), a tuple of
      plain suffixes (``*.swp``) and one joined expression for the rest;
    * anything else is tried on the whole path (one joined expression).
    With ``!`` patterns, ``pathspec`` decides (last match wins)."""

    def __init__(self, lines: list[str]) -> None:
        factory = pathspec.util.lookup_pattern(_KIND)
        pairs = [(factory(line), line) for line in lines]  # one pattern per line
        self.spec = pathspec.PathSpec([pattern for pattern, _line in pairs])
        self.fast = False
        folder_res: list[str] = []
        name_res: list[str] = []
        path_res: list[str] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for pattern, line in pairs:
            if pattern.include is None:
                continue  # a blank line or a comment
            regex = getattr(pattern, "regex", None)
            if not pattern.include or regex is None or not regex.pattern.startswith("^"):
                return  # negations or an unknown pattern kind: pathspec decides
            text = _GROUP.sub("(?:", regex.pattern)
            if text.endswith("/)") or text.endswith("/"):
                folder_res.append(text)
            elif "/" not in line.strip().rstrip("/"):
                folder_res.append(text)
                plain = line.rstrip()
                if not _GLOB.search(plain):
                    names.add(plain)  # "Thumbs.db": the name itself
                elif plain.startswith("*") and not _GLOB.search(plain[1:]):
                    suffixes.append(plain[1:])  # "*.swp": the end of the name
                else:  # a name has no "/": the optional leading folders only cost backtracking there
                    name_res.append("^" + text.removeprefix(_ANY_FOLDERS) if text.startswith(_ANY_FOLDERS) else text)
            else:
                path_res.append(text)
        self._folder = _joined(folder_res)
        self._name = _joined(name_res)
        self._names = frozenset(names)
        self._suffixes = tuple(suffixes)
        self._path = _joined(path_res)
        self._folders: dict[str, bool] = {}
        self.fast = True

    def match_file(self, path: str) -> bool:
        folder, _, name = path.rpartition("/")
        return self.match_parts(path, folder, name)

    def match_parts(self, path: str, folder: str, name: str) -> bool:
        """``match_file(path)`` with the path's folder and name already split off."""
        if not self.fast:
            return bool(self.spec.match_file(path))
        return self.folder_hit(folder) or self.name_or_path_hit(path, name)

    def folder_hit(self, folder: str) -> bool:
        """Whether a pattern matches through the folder part (fast specs only; memoized)."""
        hit = self._folders.get(folder)
        if hit is None:
            hit = bool(folder) and self._folder is not None and self._folder.match(folder + "/") is not None
            if len(self._folders) < 100_000:
                self._folders[folder] = hit
        return hit

    def name_or_path_hit(self, path: str, name: str) -> bool:
        """Whether a pattern matches the name, or the whole path (fast specs only)."""
        if name in self._names or name.endswith(self._suffixes):
            return True
        if self._name is not None and self._name.match(name) is not None:
            return True
        return self._path is not None and self._path.match(path) is not None


def _joined(regexes: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{r})" for r in regexes)) if regexes else None


def _kind() -> str:
    """pathspec's name for gitignore patterns: ``gitignore`` from 1.0 (``gitwildmatch`` before)."""
    try:
        pathspec.util.lookup_pattern("gitignore")
    except LookupError:
        return "gitwildmatch"
    return "gitignore"


_KIND = _kind()
_ANY_FOLDERS = "^(?:.+/)?"
_GLOB = re.compile(r"[*?\[\]\\!#/]|^\s|\s$")  # anything but a plain name (or a plain suffix after "*")
_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")


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
