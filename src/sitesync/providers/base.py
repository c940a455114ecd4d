"""The provider contract (DESIGN §7): the only code that touches storage implements this.

A provider instance serves one site. Paths handed to it are already resolved and checked by
``sitesync.paths`` (a site root's base location joined with a safe relative path), in the provider's
own namespace: an OS path for ``local_drive``, an object key for S3, a remote path for SFTP.

Required: ``check``, ``stat``, ``open_read``, ``write``, ``delete``, ``list``. ``write`` is atomic:
nothing is visible under the final name until the content is complete *and* the caller's
``commit_check`` has accepted it (the transfer layer uses it to verify size and hash); if the check
raises, the provider discards what it wrote and re-raises.

Optional capabilities (``Capability``) are detected from the class: a provider has one when it
defines the capability's method (``local_path``, ``write_local``, ``usage``; ``staged_write`` is a
``write_local`` that takes ``staged`` with a ``flush`` defined beside or below it), and an optional
method that stands in for a required one counts only where it is defined at least as deep in the
class hierarchy as that one (a subclass that changes ``write`` but not ``write_local`` keeps its
``write`` for every transfer). ``supported_capabilities()`` is what the class can do;
``capabilities`` (an instance's) leaves out those the site's ``disable_capabilities`` option turns
off. Where an optional path cannot be taken after all, the provider raises ``NotSupportedError``
before it has done anything and the caller falls back to the required contract.

Providers raise only the storage errors of ``sitesync.errors``; ``SiteUnavailableError`` means the
whole site cannot be reached right now. Methods may be called from several threads at once.

Options (``Config``, a pydantic model; each field's docstring is its description). The settings a
site's options come from are *shared* (the database every machine reads, written by anyone with
database access or the API token) and *local* (this machine's settings file, ``sitesync settings
set --local sites.NAME.options.KEY``, and its environment). Shared settings must never make the
service run a program, read a file of this machine, or hand this machine's credentials to a place
of the writer's choice. So a provider declares, on the option itself:

* ``LocalOnly(why)`` for an option that names a program, a command line, a credentials or
  configuration file, or credentials this machine holds (``keys=`` a regular expression: only those
  keys of a table option). The shared settings and the REST API refuse it (403, ``ForbiddenError``)
  and a value found in the shared settings anyway makes the site unusable on every machine, with
  the reason, until it is moved to local settings.
* ``Destination(credentials=...)`` for an option that says where the provider connects and sends
  the named credential options (a password, a token): if one of those comes from this machine's
  local settings, the destination must come from there too.
* ``OptionsOf(field)`` for a table option holding another provider's options (``faulty``): they are
  checked against that provider's declarations.

Every secret (a ``SecretStr`` option) may be literal, or a reference ``env:NAME``, ``file:PATH`` or
``keyring:NAME`` that reads this machine's environment, files or keyring; a reference is therefore
local-only too, whatever the option. A provider turns one into its value at use time with
``reveal(secret, site=..., key=...)`` (re-exported here for provider packages), which also keeps the
value out of every log line. The same declarations drive validation, the generated
reference (``docs/reference.md``) and the refusal, and appear in the JSON schema of the options
(``x-sitesync-local-only``, ``x-sitesync-destination``).
"""

from __future__ import annotations

import abc
import builtins
import enum
import functools
import inspect
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sitesync.errors import NotSupportedError, PermanentStorageError
from sitesync.secretrefs import reveal as reveal  # for provider packages: one import for the contract


class Capability(enum.StrEnum):
    """An optional capability of a provider, detected from its class (``detect_capabilities``)."""

    LOCAL_PATH = "local_path"  # local_path(path) gives an OS path: the engine reads the file from it
    LOCAL_COPY = "local_copy"  # write_local(): the target copies from a local OS path itself (kernel copy)
    # write_local(staged=True): the verified copy gets its final name at the next flush(), made durable
    # there together with the rest of the batch
    STAGED_WRITE = "staged_write"
    USAGE = "usage"  # usage() tells the storage's free and total space


CAP_LOCAL_PATH = Capability.LOCAL_PATH
CAP_LOCAL_COPY = Capability.LOCAL_COPY
CAP_STAGED_WRITE = Capability.STAGED_WRITE
CAP_USAGE = Capability.USAGE

# Temporary files and unfinished uploads older than this are leftovers of interrupted writes (a live
# write touches its temporary file all the time; a multipart upload is dated by its start, hence hours)
LEFTOVER_AGE_SECONDS = 6 * 3600.0


class FoldersSeen:
    """The folders a provider already looked at for leftovers (the most recent ``limit``), so it
    looks at each once. Not thread-safe: callers hold their own lock."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def first_visit(self, folder: str) -> bool:
        first = folder not in self._seen
        self._seen[folder] = None
        self._seen.move_to_end(folder)
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return first


class ReadableStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class LocalOnly:
    """Option metadata (``Annotated[T, LocalOnly("names a program the service runs")]``): only this
    machine's local settings may give the option (with ``keys``: the keys of a table option that
    match this regular expression). ``why`` completes "KEY ..." in messages and the reference."""

    why: str
    keys: str | None = None

    def local_only_key(self, key: str) -> bool:
        return self.keys is None or re.search(self.keys, key) is not None

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        out = handler(schema)
        out["x-sitesync-local-only"] = self.why + (f" (keys matching {self.keys})" if self.keys else "")
        return out


@dataclass(frozen=True)
class Destination:
    """Option metadata: the option says where the provider connects and sends the ``credentials``
    (names of other options). With ``keys``: only the keys of a table option matching it."""

    credentials: tuple[str, ...]
    keys: str | None = None

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> Any:
        out = handler(schema)
        out["x-sitesync-destination"] = list(self.credentials)
        return out


@dataclass(frozen=True)
class OptionsOf:
    """Option metadata: a table of options of the provider named by the option ``provider_field``."""

    provider_field: str


class ProviderConfig(BaseModel):
    """Base of every provider's options model. Secrets are ``pydantic.SecretStr`` fields. Each
    option's docstring is its description, which the generated reference (``docs/reference.md``,
    ``python -m sitesync.cli.reference``) shows."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    disable_capabilities: list[Capability] = Field(default_factory=list)
    """Optional capabilities not to use on this site although the provider has them (local_path,
    local_copy, staged_write, usage): the engine falls back to the required contract (streamed reads
    and writes, one rename per file, space unknown). For a mount or file system where one misbehaves."""


@dataclass(frozen=True)
class Entry:
    """What a provider knows about one stored file."""

    path: str
    size: int
    mtime: float | None = None
    ref: str | None = None  # provider's own id (a Drive file id, an S3 version id...)
    hashes: dict[str, str] = field(default_factory=dict)


class StatEntry(NamedTuple):
    """The exact stat facts of one file (``walk_stats``, ``stat_exact``): what change detection
    compares. ``path`` is ``/``-separated, relative to the folder walked (``walk_stats``) or the
    path asked for (``stat_exact``). ``file_id`` is the inode number (0 where the storage has none);
    ``mtime_ns`` the modification time in nanoseconds (0 when unknown). ``is_symlink``: a symbolic
    link (its own facts; never followed). ``unreadable``: a folder that could not be read (its
    contents are unknown, never absent). A named tuple: a walk makes one per file."""

    path: str
    size: int
    mtime_ns: int
    file_id: int = 0
    is_symlink: bool = False
    unreadable: bool = False


@dataclass(frozen=True)
class Usage:
    """Space on a site's storage, in bytes. ``total`` is None when the storage has no fixed limit."""

    free: int | None
    total: int | None


CommitCheck = Callable[[], None]


def _defined_in(cls: type, method: str) -> type:
    """The class of ``cls``'s MRO whose own body defines ``method``."""
    return next(k for k in cls.__mro__ if method in vars(k))


def _overrides(cls: type, method: str) -> bool:
    return _defined_in(cls, method) is not Provider


def _at_least_as_deep(cls: type, method: str, than: str) -> bool:
    """``method`` is defined in the class defining ``than`` or in a subclass of it: it was written
    knowing that one, so it may stand in for it."""
    return issubclass(_defined_in(cls, method), _defined_in(cls, than))


@functools.cache
def detect_capabilities(cls: type[Provider]) -> frozenset[Capability]:
    """The optional capabilities ``cls`` implements, from the methods it defines (DESIGN §7):

    * ``local_path``: defines ``local_path`` at least as deep as ``open_read`` (reads may bypass it);
    * ``local_copy``: defines ``write_local`` at least as deep as ``write`` (copies may bypass it);
    * ``staged_write``: ``local_copy`` with a ``write_local`` that takes ``staged`` and a ``flush``
      defined in the same class or below it (the flush that commits what it staged);
    * ``usage``: defines ``usage``.
    """
    found: set[Capability] = set()
    if _overrides(cls, "local_path") and _at_least_as_deep(cls, "local_path", "open_read"):
        found.add(Capability.LOCAL_PATH)
    if _overrides(cls, "write_local") and _at_least_as_deep(cls, "write_local", "write"):
        found.add(Capability.LOCAL_COPY)
        stages = "staged" in inspect.signature(cls.write_local).parameters
        if stages and _overrides(cls, "flush") and _at_least_as_deep(cls, "flush", "write_local"):
            found.add(Capability.STAGED_WRITE)
    if _overrides(cls, "usage"):
        found.add(Capability.USAGE)
    return frozenset(found)


def effective_capabilities(cls: type[Provider], options: Mapping[str, Any]) -> frozenset[Capability]:
    """The capabilities a site of provider ``cls`` with (unvalidated) ``options`` lets the engine use."""
    disabled = options.get("disable_capabilities") or []
    return cls.supported_capabilities() - {str(c) for c in disabled}


def relative_to(base: str, path: str) -> str:
    """``path`` below the folder ``base`` as a ``/``-separated relative path ("" if not below it)."""
    head = base.rstrip("/\\")
    if not path.startswith(head) or len(path) <= len(head) or path[len(head)] not in "/\\":
        return ""
    return path[len(head) + 1 :].replace("\\", "/")


def mtime_to_ns(mtime: float | None) -> int:
    """A provider's float modification time as nanoseconds (0 when the storage has none)."""
    return 0 if mtime is None else round(mtime * 1_000_000_000)


def file_id_of(entry: Entry) -> int:
    """The inode number of an entry whose ``ref`` is ``ino:N`` (``local_drive``), else 0."""
    if entry.ref and entry.ref.startswith("ino:") and entry.ref[4:].isdigit():
        return int(entry.ref[4:])
    return 0


class Provider(abc.ABC):
    """One site's storage. Subclasses set ``name`` and ``Config`` and implement the abstract methods;
    optional capabilities come from the optional methods they define (``detect_capabilities``)."""

    name: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]] = ProviderConfig
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "capabilities" in vars(cls):
            raise TypeError(
                f"{cls.__name__}: capabilities are detected from the methods a provider defines; remove "
                "`capabilities = ...` (a site switches one off with the disable_capabilities option)"
            )

    def __init__(self, site: str, config: ProviderConfig, roots: Mapping[str, str] | None = None) -> None:
        self.site = site
        self.config = config
        # root name -> base location in the provider's namespace, for this project and platform
        self.roots: dict[str, str] = dict(roots or {})

    @classmethod
    def supported_capabilities(cls) -> frozenset[Capability]:
        """What the class can do (detected from the methods it defines), whatever a site's options say."""
        return detect_capabilities(cls)

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The optional capabilities the engine may use on this site: the class's, less those the
        site's ``disable_capabilities`` option switches off."""
        return self.supported_capabilities() - frozenset(self.config.disable_capabilities)

    @classmethod
    def from_options(cls, site: str, options: dict[str, Any], roots: Mapping[str, str] | None = None) -> Provider:
        return cls(site, cls.Config.model_validate(options), roots)

    # ---- required -------------------------------------------------------------------------

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ``SiteUnavailableError`` (with a clear reason) if the site cannot be used now."""

    @abc.abstractmethod
    def stat(self, path: str) -> Entry | None:
        """The file at ``path``, or ``None`` if there is none."""

    @abc.abstractmethod
    def open_read(self, path: str) -> BinaryIO:
        """Open ``path`` for streaming reads; the caller closes it."""

    @abc.abstractmethod
    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        """Store ``size`` bytes read from ``stream`` at ``path``, atomically.

        After the last byte is durably stored and before the file becomes visible under ``path``,
        call ``commit_check()``; if it raises, discard everything and re-raise. Replaces an
        existing file at ``path``. Creates missing parent folders.
        """

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Delete the file at ``path``; deleting a missing file is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str) -> Iterator[Entry]:
        """Every file below the folder ``prefix`` (recursively); temporary files are not listed."""

    # ---- optional -------------------------------------------------------------------------

    def local_path(self, path: str) -> str | None:
        """An OS path for ``path`` when the storage is a mounted file system (``Capability.LOCAL_PATH``:
        the engine may read the file there instead of through ``open_read``), or None for this path."""
        return None

    def write_local(
        self,
        path: str,
        source: str,
        size: int,
        verify: Callable[[BinaryIO], None],
        on_bytes: Callable[[int], None] | None = None,
        *,
        staged: bool = False,
    ) -> Entry:
        """Like ``write``, copying the local file ``source`` (an OS path) by the fastest means the
        provider has (``Capability.LOCAL_COPY``; e.g. the kernel's copy_file_range). Before the copy becomes
        visible under ``path``, call ``verify(stream)`` with the stored content opened for reading
        from its start: it reads it to the end and raises if it is not the expected content; then
        discard everything and re-raise. ``on_bytes`` gets the size of each copied chunk and may
        raise to cancel.

        ``staged`` (only where the provider has ``Capability.STAGED_WRITE``): the provider may keep the
        verified copy under its temporary name and give it the final name in the next ``flush()``,
        after making the whole batch durable at once; the returned entry describes the copy as it
        will be under ``path`` (same size, modification time and ``ref``).

        Raise ``NotSupportedError`` (before copying anything) where this copy cannot be made this
        way after all: the engine streams it through ``write`` instead."""
        raise NotSupportedError(f"provider {self.name} cannot copy from a local path", site=self.site)

    def stat_many(self, paths: builtins.list[str]) -> builtins.list[Entry | None]:
        """``stat`` of each path, in order (providers that can do it faster per folder override it)."""
        return [self.stat(path) for path in paths]

    def walk_stats(self, base: str, prune: Callable[[str], bool] | None = None) -> Iterator[StatEntry]:
        """Every file below the folder ``base`` with its exact stat facts (paths relative to
        ``base``, ``/``-separated). ``prune(reldir)`` returning True skips a whole folder (and
        everything below it). Default: from ``list(base)`` (modification time to nanoseconds, no
        file id); file-system providers override it with one stat per file and real pruning."""
        pruned: dict[str, bool] = {}

        def skipped(rel: str) -> bool:
            if prune is None:
                return False
            parts = rel.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth])
                if folder not in pruned:
                    pruned[folder] = prune(folder)
                if pruned[folder]:
                    return True
            return False

        for entry in self.list(base):
            rel = relative_to(base, entry.path)
            if rel and not skipped(rel):
                yield StatEntry(rel, entry.size, mtime_to_ns(entry.mtime), file_id_of(entry), False)

    def stat_exact(self, path: str) -> StatEntry | None:
        """``stat`` with exact facts (``StatEntry``; ``path`` as given), None if there is no file.
        Two looks at an unchanged file agree. On a mounted file system (CAP_LOCAL_PATH) it must
        also agree with ``walk_stats`` exactly; elsewhere a listing may carry another precision of
        the modification time than a single look (the scanner compares a look with a look)."""
        entry = self.stat(path)
        if entry is None:
            return None
        return StatEntry(path, entry.size, mtime_to_ns(entry.mtime), file_id_of(entry), False)

    def open_for_writing(self, paths: builtins.list[str]) -> set[str]:
        """The paths among ``paths`` that another process holds open for writing right now, where
        the storage can tell (``local_drive`` on Linux: ``/proc``); an empty set where it cannot.
        Change detection leaves such files for a later scan."""
        return set()

    # ---- site markers (the storage identity of a root; see ``sitesync.identity.markers``) -------

    def read_small(self, path: str, limit: int) -> bytes | None:
        """The content of the small file at ``path`` (None if there is none); used for site markers.
        Raises a storage error if it cannot be read or is longer than ``limit`` bytes."""
        entry = self.stat(path)
        if entry is None:
            return None
        if entry.size > limit:
            raise PermanentStorageError(f"site {self.site}: {path} is {entry.size} bytes, expected at most {limit}")
        with self.open_read(path) as fh:
            return fh.read(limit + 1)

    def write_small(self, path: str, data: bytes) -> None:
        """Store a small file (a site marker) at ``path``, atomically."""
        import io

        self.write(path, io.BytesIO(data), len(data), lambda: None)

    def folders_above(self, base: str) -> builtins.list[str]:
        """The folders enclosing a root's base location, nearest first, where another site's marker
        would mean this root lies inside that site's storage. Default: the parents of ``base`` in
        the provider's ``/``-separated namespace."""
        out = []
        current = base.rstrip("/")
        while "/" in current.strip("/"):
            current = current.rsplit("/", 1)[0] or "/"
            out.append(current)
            if current == "/":
                break
        return out

    def read_small_above(self, path: str, limit: int) -> bytes | None:
        """Like ``read_small`` for a marker in a folder above the roots (``folders_above``)."""
        return self.read_small(path, limit)

    def sweep_leftovers(self, prefix: str, older_than: float = LEFTOVER_AGE_SECONDS) -> builtins.list[str]:
        """Remove what interrupted writes left below the folder ``prefix`` and that is older than
        ``older_than`` seconds: temporary files, unfinished multipart uploads. Returns what was
        removed (paths, or ``path (unfinished upload)``). Providers whose writes leave nothing
        behind keep this default. ``fsck`` and the worker call it; providers also clean up after
        themselves on their next successful write."""
        return []

    def usage(self) -> Usage | None:
        """Free and total space of the storage (``Capability.USAGE``), or None when the provider cannot tell
        (S3 has no such notion). Raises a storage error when the site cannot be asked now."""
        return None

    def flush(self) -> dict[str, Exception]:
        """Make every write that has returned durable and visible under its final name, where the
        provider defers part of that to batch it (``local_drive`` makes a batch of staged copies
        durable with one ``syncfs`` and then renames them; it fsyncs the folders of new names once
        per folder instead of once per file). The engine calls it before it records transfers as
        done, publish before it records files it copied in. Returns the paths of staged writes that
        could not be committed (nothing of them is under the final name), with the reason; raises a
        storage error if nothing could be made durable."""
        return {}

    def close(self) -> None:
        """Release connections. The provider may be used again afterwards (it reconnects)."""
