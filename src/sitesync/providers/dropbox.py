"""``dropbox``: a Dropbox account or team, through the official ``dropbox`` SDK.

Root locations are Dropbox paths (``/Projects``). With a team token the site acts as one team
member (``member``, an email or a ``dbmid:`` id), optionally inside a team folder (``team_folder``),
as the predecessor's Dropbox provider did. Tokens are secrets; a refresh token with the app key
(and secret) is the durable choice, since Dropbox's access tokens expire after hours.

Writes are atomic: small files are sent in one ``files/upload`` after ``commit_check`` passed;
bigger ones go through an upload session whose ``finish`` (which creates the file) carries the last
chunk and is sent only after every byte was read and ``commit_check`` passed. The SDK sends a
``content_hash`` with every request (Dropbox rejects damaged chunks) and the stored file's
``content_hash`` is compared with the hash of everything sent.

Throttling (429, ``too_many_write_operations``) and 5xx are retried here with a bounded back-off
honouring ``Retry-After`` (the SDK's own retries are off: they would wait without bound).
``api_url``/``content_url`` send the SDK's requests to another server (a gateway, or the test
suite's fake Dropbox); the SDK always builds ``https://api.dropboxapi.com/...`` URLs, so these are
rerouted by a ``requests`` transport adapter.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, BinaryIO, TypeVar

from pydantic import Field, SecretStr, field_validator, model_validator

from sitesync.errors import (
    PermanentStorageError,
    SiteFullError,
    SiteUnavailableError,
    StorageError,
    TransientStorageError,
    VerificationError,
)
from sitesync.providers._cloud import Backoff, Retry, remote_parts
from sitesync.providers.base import (
    CommitCheck,
    Destination,
    Entry,
    Provider,
    ProviderConfig,
    ReadableStream,
    Usage,
)
from sitesync.secretrefs import reveal

T = TypeVar("T")
MIB = 1024 * 1024


class DropboxConfig(ProviderConfig):
    token: SecretStr | None = None
    """An access token (app or team). Dropbox's short-lived tokens expire: prefer refresh_token."""
    refresh_token: SecretStr | None = None
    """A refresh token (offline access), used with app_key and app_secret to get access tokens."""
    app_key: str | None = None
    """The app's key (App Console), needed with refresh_token."""
    app_secret: SecretStr | None = None
    """The app's secret (App Console), needed with refresh_token."""
    member: str | None = None
    """With a team token: act as this team member (an email, or a team member id ``dbmid:...``)."""
    team_folder: str | None = None
    """With a team token and member: paths are inside this team folder (by name)."""
    chunk_size: int = Field(8 * MIB, ge=4 * MIB, le=148 * MIB)
    """Files up to this size are sent in one request; bigger ones in upload-session chunks of it."""
    max_retry_wait: float = Field(60.0, ge=0.0, le=3600.0)
    """Seconds one request may spend waiting for a throttled or failing Dropbox before giving up."""
    timeout: float = Field(100.0, gt=0.0)
    """Seconds one HTTP request may take before it counts as failed."""
    api_url: Annotated[str | None, Destination(("token", "refresh_token", "app_secret"))] = None
    """Send API calls here instead of https://api.dropboxapi.com (a gateway or a test server)."""
    content_url: Annotated[str | None, Destination(("token", "refresh_token", "app_secret"))] = None
    """Send uploads and downloads here instead of https://content.dropboxapi.com."""

    @field_validator("chunk_size")
    @classmethod
    def _four_mib(cls, value: int) -> int:
        if value % (4 * MIB):
            raise ValueError("must be a multiple of 4194304 (4 MiB), e.g. 8388608")
        return value

    @field_validator("api_url", "content_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/]+/?$", value):
            raise ValueError("must be a base URL such as https://api.example.com")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> DropboxConfig:
        if (self.token is None) == (self.refresh_token is None):
            raise ValueError("set exactly one of token or refresh_token")
        if self.refresh_token is not None and not self.app_key:
            raise ValueError("refresh_token needs app_key (and app_secret unless the app uses PKCE)")
        if self.team_folder is not None and self.member is None:
            raise ValueError("team_folder needs member: the team member to act as")
        return self


def _reroute_adapter(target: str) -> Any:
    import requests

    class Reroute(requests.adapters.HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            parts = urllib.parse.urlsplit(request.url)
            request.url = target.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
            return super().send(request, *args, **kwargs)

    return Reroute()


class DropboxProvider(Provider):
    name = "dropbox"
    Config = DropboxConfig
    description = "a Dropbox account, team member or team folder"
    config: DropboxConfig

    def __init__(self, site: str, config: DropboxConfig, roots: Mapping[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self.backoff = Backoff(config.max_retry_wait)
        self._lock = threading.Lock()
        self._client: Any = None

    # ------------------------------------------------------------------ the client

    def _session(self) -> Any:
        import dropbox
        from dropbox import session as dbx_session

        s = dropbox.create_session(max_connections=16)
        if self.config.api_url:
            s.mount(f"https://{dbx_session.API_HOST}/", _reroute_adapter(self.config.api_url))
        if self.config.content_url:
            s.mount(f"https://{dbx_session.API_CONTENT_HOST}/", _reroute_adapter(self.config.content_url))
        return s

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> Any:
        import dropbox
        from dropbox import common, team

        cfg, site = self.config, self.site
        auth: dict[str, Any] = {
            "max_retries_on_error": 0,
            "max_retries_on_rate_limit": 0,
            "timeout": cfg.timeout,
            "session": self._session(),
            "user_agent": "sitesync",
        }
        if cfg.refresh_token is not None:
            auth["oauth2_refresh_token"] = reveal(cfg.refresh_token, site=site, key="refresh_token")
            auth["app_key"] = cfg.app_key
            auth["app_secret"] = reveal(cfg.app_secret, site=site, key="app_secret")
        else:
            auth["oauth2_access_token"] = reveal(cfg.token, site=site, key="token")
        if cfg.member is None:
            return dropbox.Dropbox(**auth)
        admin = dropbox.DropboxTeam(**auth)
        member_id = cfg.member
        if "@" in member_id:
            [info] = self._call(
                lambda: admin.team_members_get_info_v2([team.UserSelectorArg.email(cfg.member)]).members_info,
                "find team member",
            )
            if info.is_id_not_found():
                raise SiteUnavailableError(f"site {site}: no team member has the email {cfg.member}", site=site)
            member_id = info.get_member_info().profile.team_member_id
        user = admin.as_user(member_id)
        if cfg.team_folder is None:
            return user
        folders, result = [], self._call(lambda: admin.team_team_folder_list(limit=100), "list team folders")
        while True:
            folders += [f for f in result.team_folders if f.name == cfg.team_folder]
            if not result.has_more:
                break
            result = self._call(
                functools.partial(admin.team_team_folder_list_continue, result.cursor), "list team folders"
            )
        if len(folders) != 1:
            found = "no" if not folders else str(len(folders))
            raise SiteUnavailableError(f"site {site}: {found} team folders are named {cfg.team_folder!r}", site=site)
        return user.with_path_root(common.PathRoot.namespace_id(folders[0].team_folder_id))

    # ------------------------------------------------------------------ calls and errors

    def _call(self, fn: Callable[[], T], what: str) -> T:
        try:
            return self.backoff.run(fn, self._classify, lambda retry, exc, waited: self._exhausted(retry, exc, what))
        except StorageError:
            raise
        except Exception as exc:
            raise self._translate(exc, what) from None

    def _classify(self, exc: BaseException) -> Retry | None:
        import requests
        from dropbox import exceptions

        if isinstance(exc, exceptions.RateLimitError):
            return Retry("throttled", float(exc.backoff) if exc.backoff is not None else None)
        if isinstance(exc, exceptions.InternalServerError):
            return Retry("server")
        if isinstance(exc, exceptions.ApiError) and "too_many_write_operations" in _summary(exc):
            return Retry("throttled")
        if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError)):
            return Retry("server")
        return None

    def _exhausted(self, retry: Retry, exc: BaseException, what: str) -> StorageError:
        waited = f"for {self.config.max_retry_wait:.0f} s"
        if retry.reason == "throttled":
            return SiteUnavailableError(
                f"site {self.site}: Dropbox keeps asking to slow down {waited} during {what}; backing off the site",
                site=self.site,
            )
        return TransientStorageError(
            f"site {self.site}: {what}: Dropbox keeps failing ({type(exc).__name__}) {waited}", site=self.site
        )

    def _translate(self, exc: BaseException, what: str) -> StorageError:
        import requests
        from dropbox import exceptions

        site = self.site
        if isinstance(exc, exceptions.AuthError):
            with self._lock:
                self._client = None  # read the token again next time
            return SiteUnavailableError(
                f"site {site}: Dropbox rejected the token ({_summary(exc) or 'auth error'}); check the site's token",
                site=site,
            )
        if isinstance(exc, exceptions.PathRootError):
            return SiteUnavailableError(f"site {site}: the team folder cannot be used ({_summary(exc)})", site=site)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return SiteUnavailableError(f"site {site}: cannot reach Dropbox ({type(exc).__name__})", site=site)
        if isinstance(exc, exceptions.BadInputError):
            message = str(exc.message).splitlines()[0][:300] if exc.message else "bad input"
            if "access token" in message.lower() or "team" in message.lower():
                return SiteUnavailableError(f"site {site}: Dropbox refused the request: {message}", site=site)
            return PermanentStorageError(f"site {site}: {what}: Dropbox refused the request: {message}", site=site)
        if isinstance(exc, exceptions.ApiError):
            summary = _summary(exc)
            if "insufficient_space" in summary:
                return SiteFullError(
                    f"site {site}: {what}: the Dropbox is full; free space there (transfers to the site wait)",
                    site=site,
                )
            return PermanentStorageError(f"site {site}: {what}: {summary}", site=site)
        if isinstance(exc, (exceptions.DropboxException, requests.exceptions.RequestException, OSError)):
            return TransientStorageError(f"site {site}: {what}: {type(exc).__name__}: {str(exc)[:300]}", site=site)
        return TransientStorageError(f"site {site}: {what}: {type(exc).__name__}: {str(exc)[:300]}", site=site)

    def _path(self, path: str) -> str:
        parts = remote_parts(path, site=self.site)
        if not parts:
            raise PermanentStorageError(f"site {self.site}: {path!r} names the top folder, not a file", site=self.site)
        return "/" + "/".join(parts)

    # ------------------------------------------------------------------ the contract

    def check(self) -> None:
        try:
            client = self.client()
            self._call(lambda: client.check_user("sitesync"), "check the token")
        except SiteUnavailableError:
            raise
        except StorageError as exc:
            raise SiteUnavailableError(str(exc), site=self.site) from None

    def usage(self) -> Usage | None:
        """``users/get_space_usage``: the account's allocation, or the team's (capped by the
        member's own limit when the team sets one)."""
        client = self.client()
        space = self._call(client.users_get_space_usage, "read the space usage")
        allocation = space.allocation
        if allocation.is_individual():
            total = int(allocation.get_individual().allocated)
            return Usage(free=max(0, total - int(space.used)), total=total)
        if allocation.is_team():
            team = allocation.get_team()
            total, free = int(team.allocated), max(0, int(team.allocated) - int(team.used))
            if team.user_within_team_space_allocated:
                free = min(free, max(0, int(team.user_within_team_space_allocated) - int(space.used)))
            return Usage(free=free, total=total)
        return None

    def _metadata(self, path: str) -> Any:
        from dropbox import files

        client = self.client()
        try:
            meta = self._call_raw(lambda: client.files_get_metadata(self._path(path)), f"stat {path}")
        except _NotFound:
            return None
        return meta if isinstance(meta, files.FileMetadata) else None

    def _call_raw(self, fn: Callable[[], T], what: str) -> T:
        """Like ``_call`` but a ``path/not_found`` error raises ``_NotFound``."""
        from dropbox import exceptions

        def run() -> T:
            try:
                return fn()
            except exceptions.ApiError as exc:
                if "not_found" in _summary(exc):
                    raise _NotFound() from None
                raise

        try:
            return self.backoff.run(run, self._classify, lambda retry, exc, waited: self._exhausted(retry, exc, what))
        except (_NotFound, StorageError):
            raise
        except Exception as exc:
            raise self._translate(exc, what) from None

    def _entry(self, path: str, meta: Any) -> Entry:
        return Entry(
            path=path,
            size=int(meta.size),
            mtime=meta.server_modified.timestamp() if meta.server_modified else None,
            ref=meta.id,
            hashes={"dropbox": meta.content_hash} if meta.content_hash else {},
        )

    def stat(self, path: str) -> Entry | None:
        meta = self._metadata(path)
        return None if meta is None else self._entry(path, meta)

    def open_read(self, path: str) -> BinaryIO:
        client = self.client()
        try:
            _meta, response = self._call_raw(lambda: client.files_download(self._path(path)), f"read {path}")
        except _NotFound:
            raise PermanentStorageError(f"site {self.site}: read {path}: no such file", site=self.site) from None
        return _Download(response)  # type: ignore[return-value]

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        from dropbox import files
        from dropbox.content_hash import DropboxContentHasher

        target = self._path(path)
        client = self.client()
        hasher = DropboxContentHasher()
        mode = files.WriteMode.overwrite
        chunk = self.config.chunk_size
        sent = 0

        def verified(data: bytes) -> bytes:
            nonlocal sent
            extra = stream.read(1)
            commit_check()
            if sent != size or extra:
                raise PermanentStorageError(
                    f"site {self.site}: write {path}: the source gave {sent}{'+' if extra else ''} bytes, expected {size}",
                    site=self.site,
                )
            return data

        def read_chunk() -> bytes:
            nonlocal sent
            data = _read_up_to(stream, min(chunk, size - sent))
            hasher.update(data)
            sent += len(data)
            return data

        first = read_chunk()
        if sent >= size or len(first) < chunk:
            data = verified(first)
            meta = self._call(lambda: client.files_upload(data, target, mode=mode, mute=True), f"write {path}")
        else:
            start = self._call(lambda: client.files_upload_session_start(first), f"write {path}")
            cursor = files.UploadSessionCursor(session_id=start.session_id, offset=len(first))
            pending = read_chunk()
            while sent < size and len(pending) == chunk:
                following = read_chunk()
                self._append(client, pending, cursor, path)
                pending = following
            data = verified(pending)
            commit = files.CommitInfo(path=target, mode=mode, mute=True)
            meta = self._call(lambda: client.files_upload_session_finish(data, cursor, commit), f"write {path}")
        if meta.content_hash and meta.content_hash != hasher.hexdigest():
            with contextlib.suppress(Exception):
                client.files_delete_v2(target)
            raise VerificationError(
                f"site {self.site}: write {path}: Dropbox's content_hash differs from the bytes sent; "
                "the damaged copy was removed",
                site=self.site,
            )
        return self._entry(path, meta)

    def _append(self, client: Any, data: bytes, cursor: Any, path: str) -> None:
        from dropbox import exceptions

        def send() -> None:
            try:
                client.files_upload_session_append_v2(data, cursor)
            except exceptions.ApiError as exc:
                # a retried append that had arrived: Dropbox tells where it is
                error = exc.error
                lookup = (
                    error.get_incorrect_offset() if getattr(error, "is_incorrect_offset", lambda: False)() else None
                )
                if lookup is None or lookup.correct_offset != cursor.offset + len(data):
                    raise

        self._call(send, f"write {path}")
        cursor.offset += len(data)

    def delete(self, path: str) -> None:
        client = self.client()
        with contextlib.suppress(_NotFound):
            self._call_raw(lambda: client.files_delete_v2(self._path(path)), f"delete {path}")

    def list(self, prefix: str) -> Iterator[Entry]:
        from dropbox import files

        client = self.client()
        parts = remote_parts(prefix, site=self.site)
        folder = "/" + "/".join(parts) if parts else ""
        try:
            result = self._call_raw(lambda: client.files_list_folder(folder, recursive=True), f"list {prefix}")
        except _NotFound:
            return
        head = prefix.rstrip("/")
        while True:
            for meta in result.entries:
                if not isinstance(meta, files.FileMetadata):
                    continue
                shown = meta.path_display or meta.path_lower or ""
                rel = shown[len(folder) :].lstrip("/") if shown.lower().startswith(folder.lower()) else meta.name
                yield self._entry(f"{head}/{rel}", meta)
            if not result.has_more:
                return
            result = self._call(functools.partial(client.files_list_folder_continue, result.cursor), f"list {prefix}")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


class _NotFound(Exception):
    pass


def _summary(exc: BaseException) -> str:
    """``path/not_found`` style tags of an SDK error, plus Dropbox's message for the user if any."""
    tags = _tags(getattr(exc, "error", None))
    message = getattr(exc, "user_message_text", None) or ""
    return f"{tags} {message}".strip()


def _tags(error: Any) -> str:
    out = []
    while error is not None:
        if hasattr(error, "_tag"):
            out.append(str(error._tag))
            error = getattr(error, "_value", None)
        elif hasattr(error, "reason"):  # a struct such as UploadWriteFailed wraps the union
            error = error.reason
        else:
            break
    return "/".join(out)


def _read_up_to(stream: ReadableStream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        piece = stream.read(min(n - got, MIB))
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


class _Download(io.RawIOBase):
    """A streamed download; closing it releases the HTTP connection."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._raw = response.raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()
