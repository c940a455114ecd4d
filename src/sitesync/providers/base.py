"""The provider contract (DESIGN §7): the only code that touches storage implements this.

A provider instance serves one site. Paths handed to it are already resolved and checked by
``sitesync.paths`` (a site root's base location joined with a safe relative path), in the provider's
own namespace: an OS path for ``local_drive``, an object key for S3, a remote path for SFTP.

Required: ``check``, ``stat``, ``open_read``, ``write``, ``delete``, ``list``. ``write`` is atomic:
nothing is visible under the final name until the content is complete *and* the caller's
``commit_check`` has accepted it (the transfer layer uses it to verify size and hash); if the check
raises, the provider discards what it wrote and re-raises. Optional capabilities are advertised in
``capabilities`` and discovered by the engine.

Providers raise only the storage errors of ``sitesync.errors``; ``SiteUnavailableError`` means the
whole site cannot be reached right now. Methods may be called from several threads at once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

# Optional capabilities a provider may advertise.
CAP_LOCAL_PATH = "local_path"  # local_path(path) gives an OS path: kernel copy paths may be used
CAP_LOCAL_COPY = "local_copy"  # write_local(): the target copies from a local OS path itself
CAP_NATIVE_HASH = "native_hash"  # Entry.hashes carries a storage-computed hash (md5, sha1...)
CAP_SERVER_SIDE_COPY = "server_side_copy"


class ReadableStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class ProviderConfig(BaseModel):
    """Base of every provider's options model. Secrets are ``pydantic.SecretStr`` fields. Each
    option's docstring is its description, which the generated reference (``docs/reference.md``,
    ``python -m sitesync.cli.reference``) shows."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


@dataclass(frozen=True)
class Entry:
    """What a provider knows about one stored file."""

    path: str
    size: int
    mtime: float | None = None
    ref: str | None = None  # provider's own id (a Drive file id, an S3 version id...)
    hashes: dict[str, str] = field(default_factory=dict)


CommitCheck = Callable[[], None]


class Provider(abc.ABC):
    """One site's storage. Subclasses set ``name`` and ``Config`` and implement the abstract methods."""

    name: ClassVar[str]
    Config: ClassVar[type[ProviderConfig]] = ProviderConfig
    capabilities: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""

    def __init__(self, site: str, config: ProviderConfig, roots: Mapping[str, str] | None = None) -> None:
        self.site = site
        self.config = config
        # root name -> base location in the provider's namespace, for this project and platform
        self.roots: dict[str, str] = dict(roots or {})

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
        """An OS path for ``path`` when the storage is a mounted file system (CAP_LOCAL_PATH)."""
        return None

    def write_local(
        self,
        path: str,
        source: str,
        size: int,
        verify: Callable[[BinaryIO], None],
        on_bytes: Callable[[int], None] | None = None,
    ) -> Entry:
        """Like ``write``, copying the local file ``source`` (an OS path) by the fastest means the
        provider has (CAP_LOCAL_COPY; e.g. the kernel's copy_file_range). Before the copy becomes
        visible under ``path``, call ``verify(stream)`` with the stored content opened for reading
        from its start: it reads it to the end and raises if it is not the expected content; then
        discard everything and re-raise. ``on_bytes`` gets the size of each copied chunk and may
        raise to cancel."""
        raise NotImplementedError(f"provider {self.name} cannot copy from a local path")

    def flush(self) -> None:
        """Make every write that has returned durable, where the provider defers part of that to
        batch it (``local_drive`` fsyncs the folders of new names here, once per folder, instead of
        once per file). The engine calls it before it records transfers as done, publish before it
        records files it copied in. Raises a storage error if that cannot be done."""

    def close(self) -> None:
        """Release connections. The provider may be used again afterwards (it reconnects)."""
