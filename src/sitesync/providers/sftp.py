"""``sftp``: files on an SSH server (a vendor's or a remote office's), over SFTP with asyncssh.

Why asyncssh: measured against paramiko on the same sshd (``benchmarks/sftp_libraries.py``,
results in ``benchmarks/RESULTS.md``) it was as fast or faster in nearly every case and 2-3x
faster on downloads, with many requests in flight per file. The engine's worker threads call the
synchronous contract, which submits coroutines to an event loop thread; connections (one per
worker thread) and host-key verification live in ``sftp_connect.py``. The server's host key is
always verified, before any credential is sent: against a ``known_hosts`` file (default
``~/.ssh/known_hosts``) or a pinned ``host_key_fingerprint`` (``SHA256:...`` as ``ssh-keygen -lf``
prints it).

Writes go to a hidden temporary name in the target folder (``.sitesync-NAME.RANDOM.part``),
streamed with several requests in flight; after ``commit_check`` passes the temporary file is
renamed over the final name with the ``posix-rename@openssh.com`` extension (atomic replace),
falling back to remove + rename on servers without it. Paths map below ``base_path``.

A write cut off by a dropped connection cannot remove its temporary file (the session is gone):
the provider remembers it and removes it after its next successful write; that write also looks
once at its folder for temporary files older than ``leftover_age`` (other writers' leftovers), and
``sweep_leftovers`` (fsck, the worker's sweep) does the same below any folder.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures as cf
import contextlib
import functools
import io
import logging
import posixpath
import re
import secrets
import stat as stat_mod
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any, BinaryIO, TypeVar, cast

import asyncssh
from pydantic import Field, SecretStr, field_validator

from sitesync.errors import (
    PermanentStorageError,
    SiteFullError,
    SiteUnavailableError,
    StorageError,
    TransientStorageError,
)
from sitesync.providers.base import (
    LEFTOVER_AGE_SECONDS,
    CommitCheck,
    Destination,
    Entry,
    FoldersSeen,
    LocalOnly,
    Provider,
    ProviderConfig,
    ReadableStream,
)
from sitesync.providers.local_drive import TEMP_PREFIX, TEMP_SUFFIX, is_temp_name
from sitesync.providers.sftp_connect import LOST_CONNECTION, Connections, RequestTimeout, Session
from sitesync.providers.streams import read_upto

T = TypeVar("T")
log = logging.getLogger("sitesync.providers.sftp")
CHUNK = 1024 * 1024  # bytes per write/read call; asyncssh splits each into parallel SFTP requests
IN_FLIGHT = 4  # chunks in flight per file, each way
FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")


class SftpConfig(ProviderConfig):
    host: Annotated[str, Destination(("password",))] = Field(min_length=1)
    """Host name or address of the SSH server."""
    port: int = Field(default=22, ge=1, le=65535)
    """SSH port of the server."""
    user: str = Field(min_length=1)
    """Login name on the server."""
    key_file: Annotated[str | None, LocalOnly("names a file the service reads credentials from")] = None
    """Private key file (OpenSSH format). Empty: the default keys in ~/.ssh and the ssh agent."""
    key_passphrase: SecretStr | None = None
    """Passphrase of the key file (literal, ``env:NAME`` or ``file:PATH``)."""
    password: SecretStr | None = None
    """Login password (literal, ``env:NAME`` or ``file:PATH``), when the server allows passwords."""
    known_hosts: Annotated[str, LocalOnly("names a file the service reads trusted host keys from")] = (
        "~/.ssh/known_hosts"
    )
    """OpenSSH known_hosts file that lists the server's host key."""
    host_key_fingerprint: str | None = None
    """The server's host key fingerprint, ``SHA256:...`` as ``ssh-keygen -lf`` prints it. When set,
    it is the only key accepted and ``known_hosts`` is not read."""
    base_path: str = ""
    """Remote folder every root lives below (empty: root locations are used as given)."""
    connect_timeout: float = Field(default=15.0, gt=0)
    """Seconds to wait for the connection and the SSH handshake."""
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for one answer of the server before the connection counts as lost."""
    leftover_age: float = Field(default=LEFTOVER_AGE_SECONDS, ge=0)
    """Temporary files older than this (seconds) are leftovers of interrupted writes: removed by the
    next write to their folder, by ``fsck`` and by the worker's sweep."""

    @field_validator("host_key_fingerprint")
    @classmethod
    def _fingerprint(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        value = value.strip()
        if not FINGERPRINT_RE.match(value):
            raise ValueError(
                "use the SHA256 fingerprint as `ssh-keygen -lf KEY.pub` prints it, e.g. SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
            )
        return value.rstrip("=")


class SftpProvider(Provider):
    name = "sftp"
    Config = SftpConfig
    description = "an SSH server over SFTP"
    config: SftpConfig
    conformance_skips: dict[str, str] = {}

    def __init__(self, site: str, config: SftpConfig, roots: dict[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self.connections = Connections(site, config)
        self._lock = threading.Lock()
        self._orphans: set[str] = set()  # temporary files a dropped connection kept us from removing
        self._swept = FoldersSeen()  # folders looked at for others' leftovers

    def close(self) -> None:
        self.connections.close()

    # ------------------------------------------------------------------ errors and requests

    def _sftp_error(self, exc: BaseException, what: str) -> StorageError:
        site = self.site
        if isinstance(exc, StorageError):
            return exc
        if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
            return PermanentStorageError(f"site {site}: {what}: no such file or folder", site=site)
        if isinstance(exc, asyncssh.SFTPPermissionDenied | asyncssh.SFTPWriteProtect):
            return PermanentStorageError(
                f"site {site}: {what}: permission denied on the SFTP server; check the site's access rights", site=site
            )
        if isinstance(exc, asyncssh.SFTPNotADirectory | asyncssh.SFTPFileIsADirectory):
            return PermanentStorageError(f"site {site}: {what}: {exc.reason}", site=site)
        if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
            return SiteFullError(
                f"site {site}: {what}: no space left on the SFTP server; free space there (transfers to the "
                "site wait and resume by themselves)",
                site=site,
            )
        if isinstance(exc, RequestTimeout):
            return TransientStorageError(
                f"site {site}: {what}: the SFTP server did not answer within {self.config.timeout:.0f}s", site=site
            )
        if isinstance(exc, LOST_CONNECTION):
            return TransientStorageError(
                f"site {site}: {what}: the connection to {self.connections.server} was lost", site=site
            )
        if isinstance(exc, asyncssh.SFTPError):
            return TransientStorageError(f"site {site}: {what}: {exc.reason}", site=site)
        return TransientStorageError(f"site {site}: {what}: {type(exc).__name__}: {exc}", site=site)

    def _request(self, make: Callable[[Any], Awaitable[T]], what: str) -> T:
        """Run one idempotent request on this thread's connection; reconnect once if it had dropped."""
        for attempt in (1, 2):
            session = self.connections.session()
            try:
                return self.connections.call(make(session.sftp))
            except (RequestTimeout, *LOST_CONNECTION) as exc:
                self.connections.drop(session)
                if attempt == 2 or isinstance(exc, RequestTimeout):
                    raise self._sftp_error(exc, what) from None
            except Exception as exc:
                raise self._sftp_error(exc, what) from None
        raise AssertionError("unreachable")

    def remote(self, path: str) -> str:
        """The remote path of a provider path (below ``base_path``)."""
        base = self.config.base_path
        if not base:
            return path
        return base.rstrip("/") + "/" + path.lstrip("/")

    # ------------------------------------------------------------------ contract

    def check(self) -> None:
        base = self.config.base_path
        if not base:
            self.connections.session()
            return

        async def is_dir(sftp: Any) -> bool:
            try:
                return stat_mod.S_ISDIR((await sftp.stat(base)).permissions or 0)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return False

        try:
            found = self._request(is_dir, f"stat {base}")
        except StorageError as exc:
            if isinstance(exc, SiteUnavailableError):
                raise
            raise SiteUnavailableError(str(exc), site=self.site) from None
        if not found:
            raise SiteUnavailableError(
                f"site {self.site}: base_path {base} is not a folder on the SFTP server {self.connections.server}; "
                "create it or fix the site's base_path option",
                site=self.site,
            )

    def stat(self, path: str) -> Entry | None:
        remote = self.remote(path)

        async def stat(sftp: Any) -> Any:
            try:
                return await sftp.stat(remote)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return None

        attrs = self._request(stat, f"stat {path}")
        if attrs is None or not stat_mod.S_ISREG(attrs.permissions or stat_mod.S_IFREG):
            return None
        return Entry(path=path, size=int(attrs.size or 0), mtime=attrs.mtime)

    def open_read(self, path: str) -> BinaryIO:
        remote = self.remote(path)

        async def open_file(sftp: Any) -> tuple[Any, int]:
            # open and stat together: the size bounds the read-ahead without an extra round trip
            handle: Any
            attrs: Any
            handle, attrs = await asyncio.gather(sftp.open(remote, "rb"), sftp.stat(remote), return_exceptions=True)
            if isinstance(handle, BaseException):
                raise handle
            if isinstance(attrs, BaseException):
                await handle.close()
                raise attrs
            return handle, int(attrs.size or 0)

        handle, size = self._request(open_file, f"read {path}")
        # a raw stream the engine reads in order (read/readinto/close): what BinaryIO promises here
        return cast(BinaryIO, _RemoteReader(self, handle, size, f"read {path}"))

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        remote = self.remote(path)
        folder, name = posixpath.split(remote)
        temp = posixpath.join(folder, f"{TEMP_PREFIX}{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        what = f"write {path}"

        async def open_temp(sftp: Any) -> Any:
            try:
                return await sftp.open(temp, "wb")
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                await _makedirs(sftp, folder)
                return await sftp.open(temp, "wb")

        try:
            handle = self._request(open_temp, what)  # nothing consumed yet: safe to reconnect and retry
            # the session that opened it (reconnecting here if it dropped meanwhile raises too)
            session = self.connections.session()
        except (TransientStorageError, SiteUnavailableError):
            with self._lock:  # the server may have created it before the connection dropped
                self._orphans.add(temp)
            raise
        pending: collections.deque[cf.Future[Any]] = collections.deque()
        written = 0
        caller = False  # True while the caller's code runs (stream, commit_check): its errors pass unchanged
        try:
            while True:
                caller = True
                data = read_upto(stream, CHUNK)
                caller = False
                if data:
                    pending.append(self.connections.submit(handle.write(data, written)))
                    written += len(data)
                while pending and (len(pending) >= IN_FLIGHT or len(data) < CHUNK):
                    self.connections.wait(pending.popleft())
                if len(data) < CHUNK:
                    break
            self.connections.call(handle.close())
            caller = True
            commit_check()
            caller = False
            self.connections.call(self._replace(session.sftp, temp, remote))
        except BaseException as exc:
            self.connections.settle(pending)
            if not self._discard(session, handle, temp):
                with self._lock:
                    self._orphans.add(temp)
            if caller or not isinstance(exc, Exception) or isinstance(exc, StorageError):
                raise
            if isinstance(exc, (RequestTimeout, *LOST_CONNECTION)):
                self.connections.drop(session)
            raise self._sftp_error(exc, what) from None
        self._after_write(folder)
        return Entry(path=path, size=written, mtime=time.time())

    def _after_write(self, folder: str) -> None:
        """A write succeeded, so the server answers: remove the temporary files dropped connections
        left behind, and look once at this folder for other writers' old leftovers."""
        with self._lock:
            orphans, self._orphans = self._orphans, set()
            first = self._swept.first_visit(folder)
        removed = []
        for temp in sorted(orphans):
            try:
                self._request(functools.partial(_remove_if_there, path=temp), f"remove {temp}")
                removed.append(temp)
            except (TransientStorageError, SiteUnavailableError):
                with self._lock:  # try again after the next write
                    self._orphans.add(temp)
            except StorageError as exc:
                log.warning("site %s: could not remove the temporary file %s: %s", self.site, temp, exc)
        if first:
            with contextlib.suppress(StorageError):
                removed += self._sweep(folder, self.config.leftover_age, recursive=False)
        if removed:
            log.info("site %s: removed %d temporary files of interrupted writes: %s", self.site, len(removed), removed)

    def sweep_leftovers(self, prefix: str, older_than: float | None = None) -> list[str]:
        age = self.config.leftover_age if older_than is None else older_than
        removed = self._sweep(self.remote(prefix.rstrip("/")), age, recursive=True)
        if removed:
            log.info("site %s: removed %d leftover temporary files below %s", self.site, len(removed), prefix)
        return removed

    def _sweep(self, remote_top: str, older_than: float, *, recursive: bool) -> list[str]:
        """Remove temporary files below ``remote_top`` not modified for ``older_than`` seconds (their
        modification time against this machine's clock: the default age of hours absorbs any skew)."""

        async def sweep(sftp: Any) -> list[str]:
            found: list[tuple[str, float]] = []
            folders = [remote_top]
            while folders:
                current = folders.pop()
                try:
                    names = await sftp.readdir(current)
                except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath, asyncssh.SFTPNotADirectory):
                    continue
                for n in names:
                    mode = n.attrs.permissions or 0
                    if n.filename in (".", ".."):
                        continue
                    if stat_mod.S_ISDIR(mode) and recursive:
                        folders.append(f"{current}/{n.filename}")
                    elif stat_mod.S_ISREG(mode) and is_temp_name(n.filename):
                        found.append((f"{current}/{n.filename}", float(n.attrs.mtime or 0)))
            limit = time.time() - older_than
            removed = []
            for path, mtime in found:
                if mtime <= limit:
                    await _remove_if_there(sftp, path)
                    removed.append(path)
            return removed

        return self._request(sweep, f"sweep {remote_top}")

    @staticmethod
    async def _replace(sftp: Any, temp: str, final: str) -> None:
        try:
            await sftp.posix_rename(temp, final)
        except asyncssh.SFTPOpUnsupported:  # a server without posix-rename: not atomic, but never partial
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(final)
            await sftp.rename(temp, final)

    def _discard(self, session: Session, handle: Any, temp: str) -> bool:
        """Close and remove a temporary file after a failed or refused write. False if it could
        not be removed (the connection dropped): the caller remembers it for later."""

        async def discard() -> None:
            with contextlib.suppress(Exception):
                await handle.close()
            await _remove_if_there(session.sftp, temp)

        try:
            self.connections.call(discard(), timeout=min(30.0, self.config.timeout))
        except Exception:
            return False
        return True

    def delete(self, path: str) -> None:
        remote = self.remote(path)
        stops = {self.remote(base).rstrip("/") for base in self.roots.values()}

        async def delete(sftp: Any) -> None:
            try:
                await sftp.remove(remote)
            except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
                return
            folder = posixpath.dirname(remote)
            # prune folders the delete emptied, up to (not including) the site's root folders
            while folder not in stops and any(folder.startswith(stop + "/") for stop in stops):
                try:
                    await sftp.rmdir(folder)
                except asyncssh.SFTPError:
                    return
                folder = posixpath.dirname(folder)

        self._request(delete, f"delete {path}")

    def list(self, prefix: str) -> Iterator[Entry]:
        top = prefix.rstrip("/")
        remote_top = self.remote(top)

        async def walk(sftp: Any) -> list[tuple[str, int, float | None]]:
            found: list[tuple[str, int, float | None]] = []
            folders = [""]
            while folders:
                rel = folders.pop()
                try:
                    names = await sftp.readdir(remote_top + rel)
                except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath, asyncssh.SFTPNotADirectory):
                    continue
                for n in names:
                    name = n.filename
                    if name in (".", ".."):
                        continue
                    mode = n.attrs.permissions or 0
                    if stat_mod.S_ISDIR(mode):
                        folders.append(f"{rel}/{name}")
                    elif stat_mod.S_ISREG(mode) and not is_temp_name(name):
                        found.append((f"{rel}/{name}", int(n.attrs.size or 0), n.attrs.mtime))
            return sorted(found)

        for rel, size, mtime in self._request(walk, f"list {prefix}"):
            yield Entry(path=top + rel, size=size, mtime=mtime)


async def _remove_if_there(sftp: Any, path: str) -> None:
    with contextlib.suppress(asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
        await sftp.remove(path)


async def _makedirs(sftp: Any, folder: str) -> None:
    """Create ``folder`` and its missing parents: find the deepest existing one, then mkdir down
    (asyncssh's own makedirs starts at ``/`` and hides a permission error behind "no such file")."""
    missing = []
    current = folder
    while current not in ("", "/", "."):
        try:
            attrs = await sftp.stat(current)
        except (asyncssh.SFTPNoSuchFile, asyncssh.SFTPNoSuchPath):
            missing.append(current)
            current = posixpath.dirname(current)
            continue
        if not stat_mod.S_ISDIR(attrs.permissions or 0):
            raise asyncssh.SFTPNotADirectory(f"{current} is not a folder")
        break
    for path in reversed(missing):
        try:
            await sftp.mkdir(path)
        except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
            # another worker thread may have created it meanwhile: fine if it is a folder now
            if not await sftp.isdir(path):
                raise


class _RemoteReader(io.RawIOBase):
    """A remote file read in order with ``IN_FLIGHT`` chunks requested ahead."""

    def __init__(self, provider: SftpProvider, handle: Any, size: int, what: str) -> None:
        self._provider = provider
        self._connections = provider.connections
        self._handle = handle
        self._what = what
        self._limit = size  # read ahead up to here (moves on if the file turns out longer)
        self._next = 0
        self._eof = False
        self._queue: collections.deque[tuple[int, cf.Future[bytes]]] = collections.deque()
        self._abandoned: list[cf.Future[bytes]] = []
        self._current = memoryview(b"")
        self._fill()

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._eof and len(self._queue) < IN_FLIGHT and self._next <= self._limit:
            self._queue.append((self._next, self._connections.submit(self._handle.read(CHUNK, self._next))))
            self._next += CHUNK

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            if not self._queue:
                return 0
            offset, fut = self._queue.popleft()
            try:
                data = self._connections.wait(fut)
            except Exception as exc:
                raise self._provider._sftp_error(exc, self._what) from None
            if len(data) < CHUNK:
                self._eof = True  # what was requested beyond this is empty
                self._abandoned.extend(later for _, later in self._queue)
                self._queue.clear()
            elif offset + CHUNK > self._limit:
                self._limit = offset + CHUNK  # the file grew: keep reading until a short read
            self._current = memoryview(data)
            self._fill()
        n = min(len(buffer), len(self._current))
        buffer[:n] = self._current[:n]
        self._current = self._current[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            pending = [*self._abandoned, *(fut for _, fut in self._queue)]
            self._queue.clear()
            if pending:
                self._connections.settle(pending)
                with contextlib.suppress(Exception):
                    self._connections.call(self._handle.close(), timeout=10)
            else:
                # a read handle holds nothing to lose: its close needs no answer, and waiting for
                # one cost a round trip per file (the next request on the channel queues behind it)
                closing = self._handle.close()
                try:
                    self._connections.submit(closing).add_done_callback(_ignore_outcome)
                except Exception:  # the connection's event loop is gone: so is the handle
                    closing.close()
        super().close()


def _ignore_outcome(fut: cf.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved: an unanswered close is not worth a warning


__all__ = ["SftpConfig", "SftpProvider"]
