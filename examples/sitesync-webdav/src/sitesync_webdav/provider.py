"""``webdav``: a WebDAV share (Nextcloud, ownCloud, Apache mod_dav, ``rclone serve webdav``).

Paths are ``/``-separated locations inside the share (a root is e.g. ``/projects``), appended to
``url``. A write uploads to a temporary name beside the target (``.sitesync-NAME.HEX.part``, never
listed), checks that the server holds ``size`` bytes, runs ``commit_check`` (the caller's size and
hash proof), then MOVEs it over the final name with ``Overwrite: T``: nothing is visible under the
final name before the content is complete and proven. Listing walks folders with ``PROPFIND``
``Depth: 1`` (Nextcloud refuses ``Depth: infinity``). One ``requests`` session per thread.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

import requests
from pydantic import Field, SecretStr

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
    Provider,
    ProviderConfig,
    ReadableStream,
    reveal,
)

TEMP_PREFIX, TEMP_SUFFIX = ".sitesync-", ".part"
PROPFIND = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getcontentlength/>'
    "<d:getlastmodified/><d:getetag/></d:prop></d:propfind>"
)
DAV = "{DAV:}"


class WebDAVConfig(ProviderConfig):
    url: Annotated[str, Destination(("password",))] = Field(pattern=r"^https?://")
    """Address of the share, e.g. ``https://cloud.example.com/remote.php/dav/files/USER``."""
    user: str = ""
    """User name (empty: no authentication)."""
    password: SecretStr | None = None
    """Password or app password."""
    verify_tls: bool = True
    """Check the server's TLS certificate (switch off only for a test server)."""
    timeout: float = Field(60.0, gt=0, le=3600)
    """Seconds to wait for the server to connect or answer."""


def is_temp_name(name: str) -> bool:
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


class _Upload:
    """The request body: exactly ``size`` bytes of the source, streamed (``__len__`` becomes the
    Content-Length). The source's own error is kept so it reaches the caller unchanged (requests
    would wrap an OSError as a connection error)."""

    def __init__(self, stream: ReadableStream, size: int) -> None:
        self._stream, self._left, self._size = stream, size, size
        self.error: BaseException | None = None

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        try:
            data = self._stream.read(min(self._left, 1 << 20 if n is None or n < 0 else n))
        except BaseException as exc:
            self.error = exc
            raise
        if not data:
            self.error = TransientStorageError(f"the source ended {self._left} bytes early")
            raise self.error
        self._left -= len(data)
        return data


class _Download(io.RawIOBase):
    def __init__(self, response: requests.Response) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._response.raw.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._response.close()
        super().close()


class WebDAVProvider(Provider):
    name = "webdav"
    Config = WebDAVConfig
    description = "a WebDAV share (Nextcloud, ownCloud, Apache mod_dav)"
    config: WebDAVConfig

    def __init__(self, site: str, config: WebDAVConfig, roots: Mapping[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self._base = config.url.rstrip("/")
        self._base_path = unquote(urlsplit(self._base).path)
        self._sessions: dict[int, requests.Session] = {}  # one per thread
        self._folders: set[str] = set()  # folders known to exist (created or seen)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ HTTP

    def _session(self) -> requests.Session:
        session = self._sessions.get(threading.get_ident())
        if session is None:
            session = requests.Session()
            session.verify = self.config.verify_tls
            if self.config.user:
                password = reveal(self.config.password, site=self.site, key="password") or ""
                session.auth = (self.config.user, password)
            with self._lock:
                self._sessions[threading.get_ident()] = session
        return session

    def _url(self, path: str) -> str:
        return self._base + quote("/" + path.strip("/"))

    def _request(self, method: str, path: str, ok: tuple[int, ...], **kw: Any) -> requests.Response:
        what = f"site {self.site}: {method} {path}"
        try:
            response = self._session().request(method, self._url(path), timeout=self.config.timeout, **kw)
        except requests.ConnectionError as exc:
            raise SiteUnavailableError(
                f"{what}: cannot connect to the server ({type(exc).__name__})", site=self.site
            ) from None
        except requests.Timeout:
            raise TransientStorageError(f"{what}: the server did not answer in time", site=self.site) from None
        if response.status_code not in ok:
            response.close()
            raise self._error(what, response.status_code)
        return response

    def _error(self, what: str, status: int) -> StorageError:
        if status == 401:
            return SiteUnavailableError(f"{what}: the server refused the credentials (401)", site=self.site)
        if status == 507:
            return SiteFullError(f"{what}: no space left on the share (507)", site=self.site)
        if status == 404:
            return PermanentStorageError(f"{what}: no such file or folder (404)", site=self.site)
        if status == 403:
            return PermanentStorageError(f"{what}: permission denied (403)", site=self.site)
        if status in (408, 409, 423, 429) or status >= 500:  # 409: a folder above went missing
            return TransientStorageError(f"{what}: the server answered {status}; try again later", site=self.site)
        return PermanentStorageError(f"{what}: the server answered {status}", site=self.site)

    def _propfind(self, path: str, depth: str) -> list[tuple[str, bool, Entry]] | None:
        """(path, is a folder, entry) for ``path`` and, with depth 1, what it holds; None if missing."""
        headers = {"Depth": depth, "Content-Type": "application/xml"}
        with self._request("PROPFIND", path, (207, 404), data=PROPFIND, headers=headers) as response:
            if response.status_code == 404:
                return None
            root = ET.fromstring(response.content)
        out = []
        for item in root.iter(f"{DAV}response"):
            href = unquote(urlsplit(item.findtext(f"{DAV}href") or "").path)
            rel = "/" + href.removeprefix(self._base_path).strip("/")
            folder = item.find(f".//{DAV}resourcetype/{DAV}collection") is not None
            modified = item.findtext(f".//{DAV}getlastmodified")
            entry = Entry(
                path=rel,
                size=int(item.findtext(f".//{DAV}getcontentlength") or 0),
                mtime=parsedate_to_datetime(modified).timestamp() if modified else None,
                ref=item.findtext(f".//{DAV}getetag"),
            )
            out.append((rel, folder, entry))
        return out

    def _make_folders(self, folder: str) -> None:
        parts = [p for p in folder.strip("/").split("/") if p]
        for i in range(1, len(parts) + 1):
            current = "/" + "/".join(parts[:i])
            if current in self._folders:
                continue
            try:
                self._request("MKCOL", current, (201, 405))  # 405: it exists already
            except TransientStorageError:  # another writer made it at the same moment (500, 409)?
                found = self._propfind(current, "0")
                if not (found and found[0][1]):
                    raise
            with self._lock:
                self._folders.add(current)

    # ------------------------------------------------------------------ the contract

    def check(self) -> None:
        for base in self.roots.values() or ["/"]:
            found = self._propfind(base, "0")
            if not found or not found[0][1]:  # a wrong url or user: never start an empty tree elsewhere
                raise SiteUnavailableError(
                    f"site {self.site}: root folder {base} does not exist on the share; check the url, "
                    "or create the folder",
                    site=self.site,
                )

    def stat(self, path: str) -> Entry | None:
        found = self._propfind(path, "0")
        if not found or found[0][1]:  # missing, or a folder
            return None
        return Entry(path, found[0][2].size, found[0][2].mtime, found[0][2].ref)

    def open_read(self, path: str) -> BinaryIO:
        response = self._request("GET", path, (200,), stream=True)
        response.raw.decode_content = True
        return io.BufferedReader(_Download(response), 1 << 20)  # type: ignore[return-value]

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        folder, _, name = path.rpartition("/")
        self._make_folders(folder)
        temp = f"{folder}/{TEMP_PREFIX}{name}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        body = _Upload(stream, size)
        try:
            try:
                self._request("PUT", temp, (200, 201, 204), data=body if size else b"").close()
            except BaseException:
                with self._lock:
                    self._folders.clear()  # one may have been removed meanwhile: make them again next time
                if body.error is not None:
                    raise body.error from None
                raise
            stored = self.stat(temp)
            if stored is None or stored.size != size:
                got = "nothing" if stored is None else f"{stored.size} bytes"
                raise TransientStorageError(
                    f"site {self.site}: {path}: the server kept {got} of {size}", site=self.site
                )
            commit_check()
            headers = {"Destination": self._url(path), "Overwrite": "T"}
            self._request("MOVE", temp, (201, 204), headers=headers).close()
        except BaseException:
            with contextlib.suppress(StorageError):  # else a leftover: sweep_leftovers removes it later
                self._request("DELETE", temp, (200, 204, 404)).close()
            raise
        entry = self.stat(path)
        return entry or Entry(path, size)

    def delete(self, path: str) -> None:
        self._request("DELETE", path, (200, 204, 404)).close()

    def list(self, prefix: str) -> Iterator[Entry]:
        return (entry for entry in self._walk(prefix) if not is_temp_name(entry.path.rsplit("/", 1)[-1]))

    def _walk(self, prefix: str) -> Iterator[Entry]:
        pending = ["/" + prefix.strip("/")]
        while pending:
            folder = pending.pop()
            for rel, is_folder, entry in self._propfind(folder, "1") or []:
                if rel.rstrip("/") == folder.rstrip("/"):
                    continue  # the folder itself
                if is_folder:
                    pending.append(rel)
                else:
                    yield entry

    def sweep_leftovers(self, prefix: str, older_than: float = LEFTOVER_AGE_SECONDS) -> builtins.list[str]:
        cutoff = time.time() - older_than
        removed = []  # (``list`` is the contract's method in this class: the builtin is named in full)
        for entry in self._walk(prefix):
            if is_temp_name(entry.path.rsplit("/", 1)[-1]) and (entry.mtime or 0) < cutoff:
                self.delete(entry.path)
                removed.append(entry.path)
        return removed

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
