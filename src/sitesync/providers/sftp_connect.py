"""SSH connections of the ``sftp`` provider: an asyncio event loop in a background thread, one
connection per worker thread (reused for every request of that thread, reopened when it dropped)
and host-key verification before any credential is sent.

The host key is checked against a ``known_hosts`` file or a pinned SHA256 fingerprint; an unknown
or changed key makes the site unavailable with a message that shows the key the server presented
and the command that pins it. Connection failures (refused login, unreachable host...) become
``SiteUnavailableError`` with one clear line naming the site.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import asyncssh

from sitesync.errors import SiteUnavailableError
from sitesync.secretrefs import reveal

if TYPE_CHECKING:
    from sitesync.providers.sftp import SftpConfig

T = TypeVar("T")
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
LOST_CONNECTION = (  # what asyncssh raises when the connection is gone
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.DisconnectError,
    asyncssh.ChannelOpenError,
    ConnectionError,
    EOFError,
)


class RequestTimeout(Exception):
    """No answer from the server within the configured time."""


@dataclass
class HostKeyCheck:
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


def _client_factory(check: HostKeyCheck) -> Callable[[], asyncssh.SSHClient]:
    class _Client(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            return check.validate(key)

    return _Client


@dataclass
class Session:
    conn: Any
    sftp: Any
    thread: threading.Thread = field(default_factory=threading.current_thread)


class Connections:
    """The event loop and the per-thread SSH connections of one ``sftp`` site."""

    def __init__(self, site: str, config: SftpConfig) -> None:
        self.site = site
        self.config = config
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.sessions: dict[int, Session] = {}
        self._client_keys: list[Any] | None = None

    def event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"sitesync-sftp-{self.site}", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def submit(self, awaitable: Awaitable[T]) -> cf.Future[T]:
        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self.event_loop())

    def wait(self, fut: cf.Future[T], timeout: float | None = None) -> T:
        try:
            return fut.result(self.config.timeout if timeout is None else timeout)
        except cf.TimeoutError:
            fut.cancel()
            raise RequestTimeout() from None

    def call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        return self.wait(self.submit(awaitable), timeout)

    @property
    def server(self) -> str:
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

    def _connect(self) -> Session:
        cfg = self.config
        check = HostKeyCheck(cfg.host_key_fingerprint, cfg.known_hosts)
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

        async def connect() -> Session:
            conn = await asyncssh.connect(cfg.host, **options)
            try:
                sftp = await conn.start_sftp_client()
            except BaseException:
                conn.close()
                raise
            return Session(conn, sftp)

        try:
            return self.call(connect(), timeout=cfg.connect_timeout + 10)
        except asyncssh.HostKeyNotVerifiable:
            raise self._host_key_error(check) from None
        except asyncssh.PermissionDenied:
            how = "password" if password is not None and keys is None else "key"
            raise SiteUnavailableError(
                f"site {self.site}: the SFTP server {self.server} refused the login of user {cfg.user!r} "
                f"(wrong {how}?); check the site's user, key_file or password",
                site=self.site,
            ) from None
        except (TimeoutError, RequestTimeout):
            raise SiteUnavailableError(
                f"site {self.site}: the SFTP server {self.server} did not answer within {cfg.connect_timeout:.0f}s",
                site=self.site,
            ) from None
        except asyncssh.ChannelOpenError as exc:
            raise SiteUnavailableError(
                f"site {self.site}: the SSH server {self.server} does not offer SFTP ({exc.reason})", site=self.site
            ) from None
        except asyncssh.DisconnectError as exc:
            raise SiteUnavailableError(
                f"site {self.site}: the SFTP server {self.server} closed the connection: {exc.reason}", site=self.site
            ) from None
        except OSError as exc:
            if isinstance(exc, socket.gaierror) or not exc.errno or exc.errno < 0:
                reason = exc.strerror or str(exc)
            else:  # asyncio says "Connect call failed (...)"; the errno says why
                reason = os.strerror(exc.errno)
            raise SiteUnavailableError(
                f"site {self.site}: cannot connect to the SFTP server {self.server}: {reason}", site=self.site
            ) from None

    def _host_key_error(self, check: HostKeyCheck) -> SiteUnavailableError:
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
                f"site {self.site}: HOST KEY MISMATCH: the SFTP server {self.server} presented {shown}, not the pinned "
                f"{check.pinned}; someone may be intercepting the connection, or the server's key was changed. "
                f"Confirm the new key with the server's admin, then pin it: {pin}"
            )
        elif check.had_entries:
            message = (
                f"site {self.site}: HOST KEY MISMATCH: the SFTP server {self.server} presented {shown}, which differs "
                f"from the key recorded in {check.known_hosts}; someone may be intercepting the connection, or the "
                f"server's key was changed. Confirm the new key with the server's admin, then update {check.known_hosts} "
                f"or pin it: {pin}"
            )
        else:
            where = check.file_problem or f"it is not in {check.known_hosts}"
            message = (
                f"site {self.site}: the SFTP server {self.server} presented an unknown {shown} ({where}); confirm it "
                f"with the server's admin (ssh-keygen -lf on the server's key), then pin it: {pin}"
            )
        return SiteUnavailableError(message, site=self.site)

    def session(self) -> Session:
        ident = threading.get_ident()
        with self._lock:
            session = self.sessions.get(ident)
        if session is not None and not session.conn.is_closed():
            return session
        session = self._connect()
        with self._lock:
            stale = [s for i, s in self.sessions.items() if i == ident or not s.thread.is_alive()]
            self.sessions = {i: s for i, s in self.sessions.items() if i != ident and s.thread.is_alive()}
            self.sessions[ident] = session
        for old in stale:
            old.conn.close()
        return session

    def drop(self, session: Session) -> None:
        with self._lock:
            for ident, s in list(self.sessions.items()):
                if s is session:
                    del self.sessions[ident]
        with contextlib.suppress(Exception):
            self.event_loop().call_soon_threadsafe(session.conn.close)

    def close(self) -> None:
        with self._lock:
            sessions, self.sessions = list(self.sessions.values()), {}
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

    def settle(self, pending: Iterable[cf.Future[Any]]) -> None:
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
