"""``sftp``: files on an SSH server (a vendor's or a remote office's), over SFTP with asyncssh.

Why asyncssh: measured against paramiko on the same sshd (``benchmarks/sftp_libraries.py``,
results in ``benchmarks/RESULTS.md``) it was as fast or faster in every case and 2-3x faster on
downloads, with many requests in flight per file. Each provider instance runs one asyncio event
loop in a background thread; the engine's worker threads call the synchronous contract, which
submits coroutines to that loop. Every worker thread has its own SSH connection (reused for all
its transfers, reconnected when it drops).

The server's host key is always verified, before any credential is sent: against a ``known_hosts``
file (default ``~/.ssh/known_hosts``) or against a pinned ``host_key_fingerprint``
(``SHA256:...`` as ``ssh-keygen -lf`` prints it). An unknown or changed key makes the site
unavailable with a message that shows the key the server presented and how to pin it.

Writes go to a hidden temporary name in the target folder (``.sitesync-NAME.RANDOM.part``),
streamed with several requests in flight; after ``commit_check`` passes the temporary file is
renamed over the final name with the ``posix-rename@openssh.com`` extension (atomic replace),
falling back to remove + rename on servers without it. Paths map below ``base_path``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures as cf
import contextlib
import io
import os
import posixpath
import re
import secrets
import socket
import stat as stat_mod
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import asyncssh
from pydantic import Field, SecretStr, field_validator

from sitesync.errors import PermanentStorageError, SiteUnavailableError, StorageError, TransientStorageError
from sitesync.providers.base import CommitCheck, Entry, Provider, ProviderConfig, ReadableStream
from sitesync.providers.local_drive import TEMP_PREFIX, TEMP_SUFFIX, is_temp_name
from sitesync.secrets import reveal

T = TypeVar("T")
CHUNK = 1024 * 1024  # bytes per write/read call; asyncssh splits each into parallel SFTP requests
IN_FLIGHT = 4  # chunks in flight per file, each way
FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}=?$")
# AES-GCM first: OpenSSL's AES-NI makes it the cheapest cipher for a Python client by far
ENCRYPTION_ALGS = [
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes256-ctr",
]
HOST_KEY_ALGS = [  # order used when a fingerprint is pinned (no known_hosts entry to prefer)
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
]
_LOST = (
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.DisconnectError,
    asyncssh.ChannelOpenError,
    ConnectionError,
    EOFError,
)


class SftpConfig(ProviderConfig):
    host: str = Field(min_length=1)
    """Host name or address of the SSH server."""
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(min_length=1)
    """Login name on the server."""
    key_file: str | None = None
    """Private key file (OpenSSH format). Empty: the default keys in ~/.ssh and the ssh agent."""
    key_passphrase: SecretStr | None = None
    """Passphrase of the key file (literal, ``env:NAME`` or ``file:PATH``)."""
    password: SecretStr | None = None
    """Login password (literal, ``env:NAME`` or ``file:PATH``), when the server allows passwords."""
    known_hosts: str = "~/.ssh/known_hosts"
    """OpenSSH known_hosts file that lists the server's host key."""
    host_key_fingerprint: str | None = None
    """The server's host key fingerprint, ``SHA256:...`` as ``ssh-keygen -lf`` prints it. When set,
    it is the only key accepted and ``known_hosts`` is not read."""
    base_path: str = ""
    """Remote folder every root lives below (empty: root locations are used as given)."""
    connect_timeout: float = Field(default=15.0, gt=0)
    timeout: float = Field(default=120.0, gt=0)
    """Seconds to wait for one answer of the server before the connection counts as lost."""

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


class _RequestTimeout(Exception):
    pass


@dataclass
class _HostKeyCheck:
    """The host-key decision for one connection attempt, kept for the error message."""

    pinned: str | None
    known_hosts: str
    presented: Any = None  # the SSHKey the server presented, when it was not trusted
    had_entries: bool = False  # known_hosts lists other keys for this host: the key CHANGED
    file_problem: str | None = None  # why known_hosts could not be used

    def match(self, host: str, addr: str, port: int | None) -> tuple[list[Any], list[Any], list[Any]]:
        if self.pinned is not None:
            return [], [], []
        path = os.path.expanduser(self.known_hosts)
        try:
            known = asyncssh.read_known_hosts(path)
        except FileNotFoundError:
            self.file_problem = f"{self.known_hosts} does not exist"
            return [], [], []
        except (OSError, ValueError) as exc:  # unreadable or malformed: trust nothing
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.file_problem = f"{self.known_hosts} cannot be read: {reason}"
            return [], [], []
        keys, ca_keys, revoked, *_rest = known.match(host, addr, port)
        self.had_entries = bool(keys or ca_keys)
        return list(keys), list(ca_keys), list(revoked)

    def validate(self, key: Any) -> bool:
        """Called by asyncssh for a key that known_hosts does not trust."""
        if self.pinned is not None and key.get_fingerprint("sha256").rstrip("=") == self.pinned:
            return True
        self.presented = key
        return False


def _client_factory(check: _HostKeyCheck) -> Callable[[], asyncssh.SSHClient]:
    class _Client(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            return check.validate(key)

    return _Client


@dataclass
class _Session:
    conn: Any
    sftp: Any
    thread: threading.Thread = field(default_factory=threading.current_thread)


class SftpProvider(Provider):
    name = "sftp"
    Config = SftpConfig
    description = "an SSH server over SFTP"
    config: SftpConfig
    conformance_skips: dict[str, str] = {}

    def __init__(self, site: str, config: SftpConfig, roots: dict[str, str] | None = None) -> None:  # type: ignore[override]
        super().__init__(site, config, roots)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sessions: dict[int, _Session] = {}
        self._client_keys: list[Any] | None = None

    # ------------------------------------------------------------------ event loop and sessions

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"sitesync-sftp-{self.site}", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _submit(self, awaitable: Awaitable[T]) -> cf.Future[T]:
        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self._event_loop())

    def _wait(self, fut: cf.Future[T], timeout: float | None = None) -> T:
        try:
            return fut.result(self.config.timeout if timeout is None else timeout)
        except cf.TimeoutError:
            fut.cancel()
            raise _RequestTimeout() from None

    def _call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        return self._wait(self._submit(awaitable), timeout)

    @property
    def _server(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _keys(self) -> list[Any] | None:
        cfg = self.config
        if not cfg.key_file:
            return None
        if self._client_keys is None:
            path = os.path.expanduser(cfg.key_file)
            passphrase = reveal(cfg.key_passphrase, site=self.site, key="key_passphrase")
            try:
                self._client_keys = [asyncssh.read_private_key(path, passphrase)]
            except OSError as exc:
                raise SiteUnavailableError(
                    f"site {self.site}: cannot read key_file {path}: {exc.strerror or exc}", site=self.site
                ) from None
            except asyncssh.KeyEncryptionError:
                raise SiteUnavailableError(
                    f"site {self.site}: cannot decrypt key_file {path}; check key_passphrase", site=self.site
                ) from None
            except (asyncssh.KeyImportError, ValueError) as exc:
                reason = "it is encrypted: set key_passphrase" if "passphrase" in str(exc).lower() else str(exc)
                raise SiteUnavailableError(
                    f"site {self.site}: key_file {path} is not a usable private key ({reason})", site=self.site
                ) from None
        return self._client_keys

    def _connect(self) -> _Session:
        cfg = self.config
        check = _HostKeyCheck(cfg.host_key_fingerprint, cfg.known_hosts)
        options: dict[str, Any] = {
            "port": cfg.port,
            "username": cfg.user,
            "known_hosts": check.match,
            "client_factory": _client_factory(check),
            "connect_timeout": cfg.connect_timeout,
            "keepalive_interval": 30,
            "keepalive_count_max": 4,
            "encryption_algs": ENCRYPTION_ALGS,
            # a larger receive window and packets: fewer, bigger packets for Python to decrypt on
            # downloads (uploads are bounded by the server's own packet size)
            "window": 16 * 1024 * 1024,
            "max_pktsize": 128 * 1024,
        }
        if check.pinned is not None:
            options["server_host_key_algs"] = HOST_KEY_ALGS
        keys = self._keys()
        if keys is not None:
            options["client_keys"] = keys
        password = reveal(cfg.password, site=self.site, key="password")
        if password is not None:
            options["password"] = password
            if keys is None:
                options["client_keys"] = None  # a password site: do not offer the user's own keys

        async def connect() -> _Session:
            conn = await asyncssh.connect(cfg.host, **options)
            try:
                sftp = await conn.start_sftp_client()
            except BaseException:
                conn.close()
                raise
            return _Session(conn, sftp)

        try:
            return self._call(connect(), timeout=cfg.connect_timeout + 10)
        except asyncssh.HostKeyNotVerifiable:
            raise self._host_key_error(check) from None
        except asyncssh.PermissionDenied:
            how = "password" if password is not None and keys is None else "key"
            raise SiteUnavailableError(
                f"site {self.site}: the SFTP server {self._server} refused the login of user {cfg.user!r} "
                f"(wrong {how}?); check the site's user, key_file or password",
                site=self.site,
            ) from None
        except (TimeoutError, _RequestTimeout):
            raise SiteUnavailableError(
                f"site {self.site}: the SFTP server {self._server} did not answer within {cfg.connect_timeout:.0f}s",
                site=self.site,
            ) from None
        except asyncssh.ChannelOpenError as exc:
            raise SiteUnavailableError(
                f"site {self.site}: the SSH server {self._server} does not offer SFTP ({exc.reason})", site=self.site
            ) from None
        except asyncssh.DisconnectError as exc:
            raise SiteUnavailableError(
                f"site {self.site}: the SFTP server {self._server} closed the connection: {exc.reason}", site=self.site
            ) from None
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
                reason = exc.strerror or str(exc)
            else:  # asyncio says "Connect call failed (...)"; the errno says why
                reason = os.strerror(exc.errno)
            raise SiteUnavailableError(
                f"site {self.site}: cannot connect to the SFTP server {self._server}: {reason}", site=self.site
            ) from None

    def _host_key_error(self, check: _HostKeyCheck) -> SiteUnavailableError:
        key = check.presented
        if key is None:
            shown = "a host key that could not be verified"
            fingerprint = "SHA256:..."
        else:
            fingerprint = key.get_fingerprint("sha256")
            shown = f"host key {key.get_algorithm()} {fingerprint}"
        pin = f"sitesync settings set system.sites.{self.site}.options.host_key_fingerprint {fingerprint}"
        if check.pinned is not None:
            message = (
                f"site {self.site}: HOST KEY MISMATCH: the SFTP server {self._server} presented {shown}, not the pinned "
                f"{check.pinned}; someone may be intercepting the connection, or the server's key was changed. "
                f"Confirm the new key with the server's admin, then pin it: {pin}"
            )
        elif check.had_entries:
            message = (
                f"site {self.site}: HOST KEY MISMATCH: the SFTP server {self._server} presented {shown}, which differs "
                f"from the key recorded in {check.known_hosts}; someone may be intercepting the connection, or the "
                f"server's key was changed. Confirm the new key with the server's admin, then update {check.known_hosts} "
                f"or pin it: {pin}"
            )
        else:
            where = check.file_problem or f"it is not in {check.known_hosts}"
            message = (
                f"site {self.site}: the SFTP server {self._server} presented an unknown {shown} ({where}); confirm it "
                f"with the server's admin (ssh-keygen -lf on the server's key), then pin it: {pin}"
            )
        return SiteUnavailableError(message, site=self.site)

    def _session(self) -> _Session:
        ident = threading.get_ident()
        with self._lock:
            session = self._sessions.get(ident)
        if session is not None and not session.conn.is_closed():
            return session
        session = self._connect()
        with self._lock:
            stale = [s for i, s in self._sessions.items() if i == ident or not s.thread.is_alive()]
            self._sessions = {i: s for i, s in self._sessions.items() if i != ident and s.thread.is_alive()}
            self._sessions[ident] = session
        for old in stale:
            old.conn.close()
        return session

    def _drop(self, session: _Session) -> None:
        with self._lock:
            for ident, s in list(self._sessions.items()):
                if s is session:
                    del self._sessions[ident]
        with contextlib.suppress(Exception):
            self._event_loop().call_soon_threadsafe(session.conn.close)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            for s in sessions:
                s.conn.close()
            for s in sessions:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(s.conn.wait_closed(), 5)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()

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
            return PermanentStorageError(
                f"site {site}: {what}: no space left on the SFTP server; free space and re-sync", site=site
            )
        if isinstance(exc, _RequestTimeout):
            return TransientStorageError(
                f"site {site}: {what}: the SFTP server did not answer within {self.config.timeout:.0f}s", site=site
            )
        if isinstance(exc, _LOST):
            return TransientStorageError(f"site {site}: {what}: the connection to {self._server} was lost", site=site)
        if isinstance(exc, asyncssh.SFTPError):
            return TransientStorageError(f"site {site}: {what}: {exc.reason}", site=site)
        return TransientStorageError(f"site {site}: {what}: {type(exc).__name__}: {exc}", site=site)

    def _request(self, make: Callable[[Any], Awaitable[T]], what: str) -> T:
        """Run one idempotent request on this thread's connection; reconnect once if it had dropped."""
        for attempt in (1, 2):
            session = self._session()
            try:
                return self._call(make(session.sftp))
            except (_RequestTimeout, *_LOST) as exc:
                self._drop(session)
                if attempt == 2 or isinstance(exc, _RequestTimeout):
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
            self._session()
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
                f"site {self.site}: base_path {base} is not a folder on the SFTP server {self._server}; "
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
            handle, attrs = await asyncio.gather(sftp.open(remote, "rb"), sftp.stat(remote), return_exceptions=True)
            if isinstance(handle, BaseException):
                raise handle
            if isinstance(attrs, BaseException):
                await handle.close()
                raise attrs
            return handle, int(attrs.size or 0)

        handle, size = self._request(open_file, f"read {path}")
        return _RemoteReader(self, handle, size, f"read {path}")

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

        handle = self._request(open_temp, what)  # nothing consumed yet: safe to reconnect and retry
        session = self._session()
        pending: collections.deque[cf.Future[Any]] = collections.deque()
        written = 0
        caller = False  # True while the caller's code runs (stream, commit_check): its errors pass unchanged
        try:
            while True:
                caller = True
                data = _read_upto(stream, CHUNK)
                caller = False
                if data:
                    pending.append(self._submit(handle.write(data, written)))
                    written += len(data)
                while pending and (len(pending) >= IN_FLIGHT or len(data) < CHUNK):
                    self._wait(pending.popleft())
                if len(data) < CHUNK:
                    break
            self._call(handle.close())
            caller = True
            commit_check()
            caller = False
            self._call(self._replace(session.sftp, temp, remote))
        except BaseException as exc:
            self._settle(pending)
            self._discard(session, handle, temp)
            if caller or not isinstance(exc, Exception) or isinstance(exc, StorageError):
                raise
            if isinstance(exc, (_RequestTimeout, *_LOST)):
                self._drop(session)
            raise self._sftp_error(exc, what) from None
        return Entry(path=path, size=written, mtime=time.time())

    @staticmethod
    async def _replace(sftp: Any, temp: str, final: str) -> None:
        try:
            await sftp.posix_rename(temp, final)
        except asyncssh.SFTPOpUnsupported:  # a server without posix-rename: not atomic, but never partial
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.remove(final)
            await sftp.rename(temp, final)

    def _settle(self, pending: Iterable[cf.Future[Any]]) -> None:
        """Let requests already sent finish (their outcome no longer matters) before the file handle
        closes; cancelling them midway leaves asyncssh tasks failing behind our back."""
        deadline = time.monotonic() + min(10.0, self.config.timeout)
        for fut in pending:
            try:
                fut.result(max(0.0, deadline - time.monotonic()))
            except cf.TimeoutError:
                fut.cancel()
            except Exception:  # the outcome of an abandoned request is irrelevant
                pass

    def _discard(self, session: _Session, handle: Any, temp: str) -> None:
        """Best effort: close and remove a temporary file after a failed or refused write."""

        async def discard() -> None:
            with contextlib.suppress(Exception):
                await handle.close()
            with contextlib.suppress(Exception):
                await session.sftp.remove(temp)

        with contextlib.suppress(Exception):
            self._call(discard(), timeout=min(30.0, self.config.timeout))

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


def _read_upto(stream: ReadableStream, n: int) -> bytes:
    """Read ``n`` bytes, or fewer at the end of the stream."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    readinto = getattr(stream, "readinto", None)
    while got < n:
        if readinto is not None:
            k = readinto(view[got:])
        else:
            chunk = stream.read(n - got)
            k = len(chunk)
            view[got : got + k] = chunk
        if not k:
            break
        got += k
    return bytes(view[:got]) if got < n else bytes(buf)


class _RemoteReader(io.RawIOBase):
    """A remote file read in order with ``IN_FLIGHT`` chunks requested ahead."""

    def __init__(self, provider: SftpProvider, handle: Any, size: int, what: str) -> None:
        self._provider = provider
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
            self._queue.append((self._next, self._provider._submit(self._handle.read(CHUNK, self._next))))
            self._next += CHUNK

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            if not self._queue:
                return 0
            offset, fut = self._queue.popleft()
            try:
                data = self._provider._wait(fut)
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
            self._provider._settle([*self._abandoned, *(fut for _, fut in self._queue)])
            self._queue.clear()
            with contextlib.suppress(Exception):
                self._provider._call(self._handle.close(), timeout=10)
        super().close()


__all__ = ["SftpConfig", "SftpProvider"]
