"""Catalog path templates and their safe resolution against a site's roots.

A catalog path is ``{root[NAME]}/relative/posix/path``. The relative part is checked once, here:
no ``..`` or ``.`` components, no empty components, no absolute path, no drive letter, no
backslash, no NUL or other control characters, and length limits. Every resolution goes through
``RootedPath.parse`` so no caller can build a path that leaves its root.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from sitesync.errors import PathTemplateError

ROOT_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_TEMPLATE_RE = re.compile(r"^\{root\[(?P<root>[^\]]*)\]\}(?P<rest>.*)$", re.DOTALL)
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_CONTROL_RE = re.compile(r"[\x00-\x1f]")
MAX_COMPONENT_BYTES = 255
MAX_PATH_BYTES = 4096


def check_root_name(name: str) -> str:
    if not ROOT_NAME_RE.match(name):
        raise PathTemplateError(
            f"invalid root name {name!r}: use letters, digits, '_' or '-', starting with a letter or '_'"
        )
    return name


def check_relative(rel: str, *, context: str) -> str:
    """Validate a root-relative POSIX path and return it unchanged."""
    if not rel:
        raise PathTemplateError(f"{context}: the path below the root is empty")
    if _CONTROL_RE.search(rel):
        raise PathTemplateError(f"{context}: the path contains a NUL or control character")
    if "\\" in rel:
        raise PathTemplateError(f"{context}: use '/' as separator, not '\\'")
    if rel.startswith("/"):
        raise PathTemplateError(f"{context}: the path below the root must be relative, not absolute")
    if _DRIVE_RE.match(rel):
        raise PathTemplateError(f"{context}: the path must not start with a drive letter")
    if len(rel.encode("utf-8")) > MAX_PATH_BYTES:
        raise PathTemplateError(f"{context}: the path is longer than {MAX_PATH_BYTES} bytes")
    if unicodedata.normalize("NFC", rel) != rel:
        bad = next(p for p in rel.split("/") if unicodedata.normalize("NFC", p) != p)
        raise PathTemplateError(
            f"{context}: {bad!r} is not in Unicode NFC form (a decomposed name, as macOS can create); "
            "rename it to its composed form, e.g. with `convmv -f utf8 -t utf8 --nfc`"
        )
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            raise PathTemplateError(
                f"{context}: the path has an empty, '.' or '..' component; it must stay inside its root"
            )
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise PathTemplateError(f"{context}: a path component is longer than {MAX_COMPONENT_BYTES} bytes")
    return rel


@dataclass(frozen=True)
class RootedPath:
    """A validated catalog path: a root name and a relative POSIX path below it."""

    root: str
    rel: str

    @classmethod
    def parse(cls, template: str) -> RootedPath:
        match = _TEMPLATE_RE.match(template)
        if not match:
            raise PathTemplateError(f"invalid catalog path {template!r}: it must start with '{{root[NAME]}}/'")
        root = check_root_name(match.group("root"))
        rest = match.group("rest")
        if not rest.startswith("/"):
            raise PathTemplateError(f"invalid catalog path {template!r}: expected '/' after the root")
        rel = check_relative(rest[1:], context=f"catalog path {template!r}")
        return cls(root, rel)

    @property
    def template(self) -> str:
        return f"{{root[{self.root}]}}/{self.rel}"

    def __str__(self) -> str:
        return self.template


_WINDOWS_ABSOLUTE_RE = re.compile(r"^([A-Za-z]:[\\/]|[\\/]{2}[^\\/]+[\\/][^\\/]+)")


def check_absolute_location(location: str, platform: str, *, context: str) -> str:
    """A disk root's location must be absolute: a relative one would resolve against each
    process's working folder, so two commands would act on two different folders. ``platform``
    is ``linux``, ``darwin``, ``windows`` or ``any`` (either form)."""
    posix = location.startswith("/")
    windows = bool(_WINDOWS_ABSOLUTE_RE.match(location))
    ok = {"windows": windows, "any": posix or windows}.get(platform, posix)
    if not ok:
        shape = {
            "windows": "C:\\... or \\\\server\\share\\...",
            "any": "/... or C:\\...",
        }.get(platform, "/...")
        raise PathTemplateError(
            f"{context}: {location!r} is not an absolute path; give the full location ({shape}), "
            "as a relative one would depend on the folder each command runs in"
        )
    return location


def shown_path(template: str) -> str:
    """A catalog path as people read it in a message: the part below its root, without the
    ``{root[NAME]}`` placeholder (the template itself when it does not parse)."""
    try:
        return RootedPath.parse(template).rel
    except PathTemplateError:
        return template


def join_root(base: str, rel: str) -> str:
    """Join a site root's base location with a validated relative path (provider-native form).

    ``base`` uses '/' unless it is a Windows path; the relative part is always POSIX.
    """
    if not base:
        return rel
    sep = "\\" if ("\\" in base and "/" not in base) else "/"
    return base.rstrip("/\\") + sep + (rel.replace("/", sep) if sep == "\\" else rel)


def relative_to_base(path: str, base: str) -> str | None:
    """If OS path ``path`` lies inside ``base`` (both existing or not), return the POSIX relative part."""
    try:
        p = Path(os.path.realpath(path))
        b = Path(os.path.realpath(base))
        rel = p.relative_to(b)
    except ValueError:
        return None
    if str(rel) in ("", "."):
        return None
    return PurePosixPath(*rel.parts).as_posix()
