"""Turning files on disk into a publish: checking the input, placing files under the active site's
roots (registered in place, or copied into the project's publish location) and hashing them.

Nothing here writes to the database; ``Client.publish`` hands the result to the state store.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from sitesync.errors import InvalidInputError, PathTemplateError
from sitesync.hashing import DEFAULT_ALGORITHM, HashingReader, hash_file
from sitesync.machine_view import SiteSpec
from sitesync.paths import RootedPath
from sitesync.providers.base import Provider
from sitesync.state.records import FileFacts, RepresentationKey
from sitesync.state.schema import HERO_VERSION

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
HASH_THREADS = 4
PARALLEL_HASH_BYTES = 4 * 1024 * 1024  # files at least this big are hashed in parallel threads


def parse_version(text: str | int) -> int:
    if isinstance(text, int):
        value = text
    elif str(text).strip().lower() == "hero":
        return HERO_VERSION
    else:
        raw = str(text).strip().lower().removeprefix("v")
        if not raw.isdigit():
            raise InvalidInputError(f"invalid version {text!r}: use a number (3, v003) or 'hero'")
        value = int(raw)
    if value < 0 or value > 1_000_000:
        raise InvalidInputError(f"invalid version {text!r}: use a number from 0 to 1000000, or 'hero'")
    return value


def check_key(folder: str, product: str, version: str | int, name: str) -> RepresentationKey:
    for label, value, slash_ok in (
        ("folder", folder, True),
        ("product", product, False),
        ("name", name, False),
    ):
        if not value or not value.strip():
            raise InvalidInputError(f"--{label} must not be empty")
        if _CONTROL.search(value):
            raise InvalidInputError(f"--{label} {value!r} contains a control character")
        if not slash_ok and ("/" in value or "\\" in value):
            raise InvalidInputError(f"--{label} {value!r} must not contain '/' or '\\'")
        parts = value.strip("/").split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise InvalidInputError(f"--{label} {value!r} must not contain empty, '.' or '..' parts")
    return RepresentationKey(folder.strip("/"), product, parse_version(version), name)


@dataclass(frozen=True)
class PlacedFile:
    source: str  # OS path given by the user
    template: str  # catalog path
    in_place: bool  # already under a root of the publishing site
    size: int = -1  # when it was checked
    real: str = ""  # its real path (symbolic links resolved)
    mtime: float | None = None  # its modification time when it was checked


def _fill_template(template: str, project: str, key: RepresentationKey, filename: str) -> str:
    version = "hero" if key.version == HERO_VERSION else f"v{key.version:03d}"
    values = {
        "project": project,
        "folder": key.folder,
        "product": key.product,
        "version": version,
        "name": key.name,
        "filename": filename,
    }

    def sub(match: re.Match[str]) -> str:
        field = match.group(1)
        if field not in values:
            raise PathTemplateError(
                f"publish_template: unknown placeholder {{{field}}}; use project, folder, product, version, name, filename"
            )
        return values[field]

    head, sep, rest = template.partition("]}")
    return head + sep + re.sub(r"\{([a-z_]+)\}", sub, rest)


def place_files(
    files: Sequence[str], project: str, key: RepresentationKey, site: SiteSpec, publish_template: str
) -> list[PlacedFile]:
    """Decide the catalog path of each input file. Nothing is copied yet; all input is checked first."""
    if not files:
        raise InvalidInputError("no files given; name at least one FILE to publish")
    placed: list[PlacedFile] = []
    seen: dict[str, str] = {}
    local_roots = site.roots if site.provider == "local_drive" else {}
    # resolved once per publish, not once per file: a sequence of 10,000 frames is one folder
    real_roots = [(root, os.path.realpath(base)) for root, base in local_roots.items()]
    real_folders: dict[str, str] = {}
    for raw in files:
        path = os.path.abspath(os.path.expanduser(raw))
        real, size, mtime = _check_input(raw, path, real_folders)
        template = None
        for root, real_base in real_roots:
            rel = _below(real, real_base)
            if rel is not None:
                template = RootedPath.parse(f"{{root[{root}]}}/{rel}").template
                break
        in_place = template is not None
        if template is None:
            template = RootedPath.parse(_fill_template(publish_template, project, key, os.path.basename(path))).template
        if template in seen:
            raise InvalidInputError(
                f"{raw} and {seen[template]} would both be published as {template}; give distinct file names"
            )
        seen[template] = raw
        placed.append(PlacedFile(path, template, in_place, size, real, mtime))
    return placed


def _check_input(raw: str, path: str, real_folders: dict[str, str]) -> tuple[str, int, float]:
    """Refuse what cannot be published; return the file's real path (symbolic links resolved), size
    and modification time."""
    try:
        st = os.lstat(path)
        link = stat.S_ISLNK(st.st_mode)
        if link:
            st = os.stat(path)
    except FileNotFoundError:
        raise InvalidInputError(f"file not found: {raw}; nothing was published") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {raw} ({exc.strerror}); nothing was published") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError(f"not a regular file: {raw}; publish files, not folders")
    if not os.access(path, os.R_OK):
        raise InvalidInputError(f"cannot read {raw} (permission denied); nothing was published")
    if link:
        return os.path.realpath(path), st.st_size, st.st_mtime
    folder, name = os.path.split(path)
    real_folder = real_folders.get(folder)
    if real_folder is None:
        real_folder = real_folders[folder] = os.path.realpath(folder)
    return os.path.join(real_folder, name), st.st_size, st.st_mtime


def _below(real_path: str, real_base: str) -> str | None:
    """The POSIX path of ``real_path`` relative to ``real_base``, if it lies strictly inside it."""
    prefix = real_base.rstrip(os.sep) + os.sep
    if not real_path.startswith(prefix) or len(real_path) == len(prefix):
        return None
    return real_path[len(prefix) :].replace(os.sep, "/")


def hash_in_place(placed: Sequence[PlacedFile], algorithm: str = DEFAULT_ALGORITHM) -> dict[str, FileFacts]:
    """Hash files registered in place. Big files in parallel threads (reads and xxhash release the
    GIL); small ones in this thread, where starting a thread per file would cost more than hashing."""
    todo = [p for p in placed if p.in_place]

    def one(p: PlacedFile) -> FileFacts:
        size, digest = hash_file(p.source, algorithm)
        return FileFacts(p.template, size, algorithm, digest)

    big = [p for p in todo if p.size >= PARALLEL_HASH_BYTES] if len(todo) > 1 else []
    out = {p.template: one(p) for p in todo if p.size < PARALLEL_HASH_BYTES or len(big) == 0}
    if big:
        with cf.ThreadPoolExecutor(min(HASH_THREADS, len(big))) as pool:
            out.update((f.path, f) for f in pool.map(one, big))
    return out


def copy_into_site(p: PlacedFile, site: SiteSpec, provider: Provider, algorithm: str = DEFAULT_ALGORITHM) -> FileFacts:
    """Copy a file from outside the site's roots into its publish location, hashing as it streams;
    the catalog records exactly the bytes that were written."""
    size = os.path.getsize(p.source)
    with open(p.source, "rb") as fh:
        reader = HashingReader(fh, algorithm)

        def commit_check() -> None:
            reader.drain()
            if reader.bytes_read != size:
                raise InvalidInputError(f"{p.source} changed size while it was being published; publish it again")

        entry = provider.write(site.resolve(p.template), reader, size, commit_check)
    return FileFacts(p.template, reader.bytes_read, algorithm, reader.hexdigest(), entry.mtime, entry.ref)
