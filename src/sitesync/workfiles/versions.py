"""Causality, not clocks: what a change seen on one site means for a workfile (pure).

Every version names its parent: the version the making site held when it changed the file.
Recording a change from site S is a compare-and-swap on the workfile's head, decided here from
the rows the state store has locked in one transaction:

- S held the head (or the file is new) -> fast-forward: the change becomes the head and every
  other site gets it;
- the head moved on since S last had the file (another site changed it from the same base) ->
  conflict: S's content is recorded as a conflicting version, kept and placed beside the file on
  the other sites, and propagation of the path stops until someone resolves it;
- the change came while another site holds the lock -> conflict at once (``locked-edit``);
- delete versus modify: the modified content wins; the deletion is recorded as a conflict.

Machine clocks never decide anything; they only name the conflict copies (sortable, readable).
"""

from __future__ import annotations

import enum
import posixpath
import time
from dataclasses import dataclass

DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Held:
    """A version as the decision needs it."""

    id: int
    number: int
    kind: str  # edit | delete | restore | resolve | conflict
    hash: str | None  # None: a deletion (nothing there)

    @property
    def is_delete(self) -> bool:
        return self.kind == DELETE or self.hash is None


@dataclass(frozen=True, slots=True)
class FileState:
    """One workfile as site ``site`` sees it at the moment of deciding."""

    head: Held | None  # the current version (None: never recorded)
    held: Held | None  # what the deciding site holds as far as sitesync knows (None: nothing)
    in_conflict: bool = False
    locked_by_other: str | None = None  # "user@site" of a lock another site holds, unexpired


class Decision(enum.Enum):
    NOTHING = "nothing"  # the site already holds this content: no new version
    ADOPT = "adopt"  # the site now holds the head's content: record it as holding the head
    FAST_FORWARD = "fast_forward"  # a new head, made from the head
    CONFLICT = "conflict"  # edit-edit: both kept, path blocked until resolved
    LOCKED = "locked"  # an edit while another site holds the lock: conflict at once
    EDIT_OVER_DELETE = "edit_over_delete"  # the head is a deletion, this site edited: edit wins
    DELETE = "delete"  # a recorded deletion becomes the head
    DELETE_REFUSED = "delete_refused"  # delete vs modify (or locked): the content wins


def decide_edit(state: FileState, content_hash: str) -> Decision:
    """Site S found ``content_hash`` at the path (a new or modified file)."""
    head, held = state.head, state.held
    if held is not None and held.hash == content_hash:
        return Decision.NOTHING
    if head is None:
        return Decision.FAST_FORWARD
    if head.hash == content_hash:
        return Decision.ADOPT
    if state.in_conflict:
        return Decision.CONFLICT
    if state.locked_by_other is not None:
        return Decision.LOCKED
    if head.is_delete:
        return Decision.FAST_FORWARD if held is not None and held.id == head.id else Decision.EDIT_OVER_DELETE
    if held is not None and held.id == head.id:
        return Decision.FAST_FORWARD
    return Decision.CONFLICT


def decide_delete(state: FileState) -> Decision:
    """Site S found the file gone."""
    head, held = state.head, state.held
    if head is None or held is None or held.is_delete:
        return Decision.NOTHING
    if head.is_delete:
        return Decision.ADOPT
    if held.id == head.id and not state.in_conflict and state.locked_by_other is None:
        return Decision.DELETE
    return Decision.DELETE_REFUSED


CONFLICT_MARK = ".conflict-"


def conflict_name(path: str, site: str, when: float | None = None) -> str:
    """``sh010_anim_v012.ma`` -> ``sh010_anim_v012.conflict-<site>-<YYYYMMDD-HHMMSS>.ma``: beside
    the file, sortable, the extension kept so the DCC still opens it (UTC)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if when is None else when))
    folder, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    if not stem:  # ".bashrc"-like names: the whole name is the stem
        stem, ext = name, ""
    return posixpath.join(folder, f"{stem}{CONFLICT_MARK}{site}-{stamp}{ext}")


def is_conflict_copy(path: str) -> bool:
    """A name ``conflict_name`` makes: never recorded as a workfile by a scan (it is one of a
    conflict's two contents, placed by sitesync; ``resolve --keep both`` makes it a workfile)."""
    return CONFLICT_MARK in posixpath.basename(path)


VERSIONS_FOLDER = ".sitesync-versions"


def kept_name(path: str, number: int, content_hash: str) -> str:
    """Where a version is kept in the versions area, relative to the project folder:
    ``.sitesync-versions/<path>/<number>-<hash8><ext>``."""
    ext = posixpath.splitext(path)[1]
    return posixpath.join(VERSIONS_FOLDER, path, f"{number:06d}-{content_hash[:8]}{ext}")


def in_versions_area(path: str) -> bool:
    return path == VERSIONS_FOLDER or path.startswith(VERSIONS_FOLDER + "/")


__all__ = [
    "CONFLICT_MARK",
    "VERSIONS_FOLDER",
    "Decision",
    "FileState",
    "Held",
    "conflict_name",
    "decide_delete",
    "decide_edit",
    "in_versions_area",
    "is_conflict_copy",
    "kept_name",
]
