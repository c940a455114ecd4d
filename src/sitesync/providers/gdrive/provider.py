"""``gdrive``: a folder in Google Drive (My Drive or a shared drive), through a service account.

Drive has ids, not paths: a name may even repeat inside one folder. Paths handed to this provider
are '/'-separated below the configured destination folder; every component but the last is a
folder and the last is a file, so names with dots and names without extension are never confused.
Folder ids are looked up lazily, one folder at a time (never a listing of the whole drive), and
kept for the life of the provider. A name found twice in one folder is reported, not guessed.

Writes: small files go in one multipart request after ``commit_check`` passed; bigger ones use a
resumable session whose final chunk is sent only after ``commit_check`` passed (see ``streams``).
An existing file is updated in place (a new revision), so its id and sharing stay.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO

from sitesync.errors import (
    PermanentStorageError,
    SiteUnavailableError,
    StorageError,
    VerificationError,
)
from sitesync.providers._cloud import remote_parts
from sitesync.providers.base import CommitCheck, Entry, Provider, ReadableStream, Usage
from sitesync.providers.gdrive.api import DriveApi, DriveNotFound, http_status
from sitesync.providers.gdrive.config import GoogleDriveConfig
from sitesync.providers.gdrive.streams import DriveReader, StreamUpload, read_for_commit

FOLDER_MIME = "application/vnd.google-apps.folder"
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."
FILE_FIELDS = "id, name, mimeType, size, md5Checksum, modifiedTime, createdTime"
LIST_FIELDS = f"nextPageToken, files({FILE_FIELDS})"
MY_DRIVE = "My Drive"


def quote(value: str) -> str:
    """A string literal for a Drive query: backslashes and single quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _mtime(item: dict[str, Any]) -> float | None:
    text = item.get("modifiedTime")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class GoogleDriveProvider(Provider):
    name = "gdrive"
    Config = GoogleDriveConfig
    description = "a Google Drive folder (My Drive or a shared drive) through a service account"
    config: GoogleDriveConfig

    def __init__(self, site: str, config: GoogleDriveConfig, roots: Mapping[str, str] | None = None) -> None:
        super().__init__(site, config, roots)
        self.api = DriveApi(site, config)
        self._lock = threading.Lock()
        self._base: tuple[str, str | None] | None = None  # (folder id, shared drive id)
        self._folders: dict[tuple[str, ...], str] = {}  # folder names below the base -> id
        self._folder_locks: dict[tuple[str, ...], threading.Lock] = {}

    # ------------------------------------------------------------------ the destination folder

    def _files(self) -> Any:
        return self.api.service().files()

    def _scope(self) -> dict[str, Any]:
        """Parameters that make files.list look inside the destination's drive."""
        _, drive_id = self.base()
        if drive_id:
            return {
                "corpora": "drive",
                "driveId": drive_id,
                "includeItemsFromAllDrives": True,
                "supportsAllDrives": True,
            }
        return {"corpora": "user", "supportsAllDrives": True}

    def base(self) -> tuple[str, str | None]:
        """The destination folder's id and its shared drive id (None in My Drive); found once."""
        if self._base is None:
            with self._lock:
                if self._base is None:
                    self._base = self._resolve_base()
        return self._base

    def _unavailable(self, message: str) -> SiteUnavailableError:
        return SiteUnavailableError(f"site {self.site}: {message}", site=self.site)

    def _get_folder(self, file_id: str, label: str) -> dict[str, Any]:
        request = self._files().get(
            fileId=file_id, fields="id, name, mimeType, driveId, trashed", supportsAllDrives=True
        )
        try:
            item = self.api.call(lambda: request.execute(num_retries=0), f"open folder {label}")
        except DriveNotFound:
            raise self._unavailable(
                f"the Drive folder {label} is not found or not shared with {self.api.account}"
            ) from None
        except SiteUnavailableError:
            raise
        except StorageError as exc:
            detail = str(exc).removeprefix(f"site {self.site}: ")
            raise self._unavailable(f"cannot open the Drive folder {label}: {detail}") from None
        if item.get("mimeType") != FOLDER_MIME:
            raise self._unavailable(f"{label} is not a Drive folder; set folder_id to a folder's id")
        if item.get("trashed"):
            raise self._unavailable(f"the Drive folder {label} is in the trash; restore it")
        return item

    def _resolve_base(self) -> tuple[str, str | None]:
        cfg = self.config
        if cfg.folder_id:
            item = self._get_folder(cfg.folder_id, f"id {cfg.folder_id}")
            return item["id"], item.get("driveId")
        names = [p for p in (cfg.folder or "").split("/") if p]
        top, rest = names[0], names[1:]
        if top == MY_DRIVE:
            item = self._get_folder("root", MY_DRIVE)
            folder_id, drive_id = item["id"], None
        else:
            folder_id = drive_id = self._shared_drive_id(top)
        walked = [top]
        for name in rest:
            walked.append(name)
            found = self._children(folder_id, name, folder=True, drive_id=drive_id, scope=False)
            if not found:
                raise self._unavailable(
                    f"Drive folder '{'/'.join(walked)}' does not exist or is not shared with {self.api.account}"
                )
            if len(found) > 1:
                raise self._unavailable(self._duplicates_message("/".join(walked[:-1]), name, found, "folders"))
            folder_id = found[0]["id"]
        return folder_id, drive_id

    def _shared_drive_id(self, name: str) -> str:
        drives, token = [], None
        service = self.api.service()
        while True:
            request = service.drives().list(pageSize=100, pageToken=token, fields="nextPageToken, drives(id, name)")
            page = self.api.execute(request, "list shared drives")
            drives += [d for d in page.get("drives", []) if d.get("name") == name]
            token = page.get("nextPageToken")
            if not token:
                break
        if not drives:
            raise self._unavailable(
                f"no shared drive named {name!r} is visible to {self.api.account}; add it as a member, "
                f"or use 'My Drive/...' or folder_id"
            )
        if len(drives) > 1:
            raise self._unavailable(f"{len(drives)} shared drives are named {name!r}; use folder_id instead")
        return drives[0]["id"]

    # ------------------------------------------------------------------ lookups

    def _children(
        self, parent: str, name: str | None, *, folder: bool | None, drive_id: str | None = None, scope: bool = True
    ) -> list[dict[str, Any]]:
        clauses = [f"{quote(parent)} in parents", "trashed = false"]
        if name is not None:
            clauses.insert(0, f"name = {quote(name)}")
        if folder is True:
            clauses.append(f"mimeType = {quote(FOLDER_MIME)}")
        elif folder is False:
            clauses.append(f"mimeType != {quote(FOLDER_MIME)}")
        if scope:
            params = self._scope()
        elif drive_id:
            params = {
                "corpora": "drive",
                "driveId": drive_id,
                "includeItemsFromAllDrives": True,
                "supportsAllDrives": True,
            }
        else:
            params = {"corpora": "user", "supportsAllDrives": True}
        out: list[dict[str, Any]] = []
        token = None
        files = self._files()
        while True:
            request = files.list(q=" and ".join(clauses), fields=LIST_FIELDS, pageSize=1000, pageToken=token, **params)
            page = self.api.execute(request, f"list folder {parent}")
            out += page.get("files", [])
            token = page.get("nextPageToken")
            if not token:
                return out

    def _duplicates_message(self, folder: str, name: str, items: list[dict[str, Any]], kind: str) -> str:
        ids = ", ".join(i["id"] for i in items[:5])
        return (
            f"the Drive folder '{folder or '/'}' holds {len(items)} {kind} named {name!r} (ids {ids}); Drive allows "
            "duplicate names but sitesync cannot tell which is meant: remove or rename the extras in Drive"
        )

    def _folder_id(self, names: list[str], *, create: bool) -> str | None:
        """The id of the folder ``names`` below the base, or None if missing (created if asked)."""
        current, _ = self.base()
        for depth in range(1, len(names) + 1):
            key = tuple(names[:depth])
            cached = self._folders.get(key)
            if cached is not None:
                current = cached
                continue
            with self._lock:
                lock = self._folder_locks.setdefault(key, threading.Lock())
            with lock:
                cached = self._folders.get(key)
                if cached is None:
                    cached = self._lookup_folder(current, key, create)
                    if cached is None:
                        return None
                    self._folders[key] = cached
            current = cached
        return current

    def _lookup_folder(self, parent: str, key: tuple[str, ...], create: bool) -> str | None:
        name = key[-1]
        found = self._children(parent, name, folder=True)
        if len(found) > 1:
            raise PermanentStorageError(
                f"site {self.site}: " + self._duplicates_message("/".join(key[:-1]), name, found, "folders"),
                site=self.site,
            )
        if found:
            return found[0]["id"]
        if not create:
            return None
        request = self._files().create(
            body={"name": name, "mimeType": FOLDER_MIME, "parents": [parent]},
            fields="id, createdTime",
            supportsAllDrives=True,
        )
        mine = self.api.execute(request, f"create folder {'/'.join(key)}")
        # another machine may have created the same folder at the same moment: keep the oldest
        found = self._children(parent, name, folder=True)
        if len(found) > 1:
            winner = min(found, key=lambda f: (f.get("createdTime", ""), f["id"]))
            if winner["id"] != mine["id"]:
                self._remove(mine["id"], f"remove duplicate folder {'/'.join(key)}")
            return winner["id"]
        return mine["id"]

    def _locate(self, path: str) -> tuple[list[str], str]:
        parts = remote_parts(path, site=self.site)
        if not parts:
            raise PermanentStorageError(
                f"site {self.site}: {path!r} names the destination folder, not a file", site=self.site
            )
        return parts[:-1], parts[-1]

    def _file(self, path: str) -> dict[str, Any] | None:
        folders, name = self._locate(path)
        parent = self._folder_id(folders, create=False)
        if parent is None:
            return None
        found = self._children(parent, name, folder=False)
        if len(found) > 1:
            raise PermanentStorageError(
                f"site {self.site}: " + self._duplicates_message("/".join(folders), name, found, "files"),
                site=self.site,
            )
        return found[0] if found else None

    def _entry(self, path: str, item: dict[str, Any]) -> Entry:
        hashes = {"md5": item["md5Checksum"]} if item.get("md5Checksum") else {}
        return Entry(path=path, size=int(item.get("size") or 0), mtime=_mtime(item), ref=item["id"], hashes=hashes)

    # ------------------------------------------------------------------ the contract

    def check(self) -> None:
        try:
            old, self._base = self._base, None
            if self.base() != old:
                self._folders.clear()
        except SiteUnavailableError:
            raise
        except StorageError as exc:
            raise self._unavailable(str(exc).removeprefix(f"site {self.site}: ")) from None

    def usage(self) -> Usage | None:
        """The account's storage quota (``about.storageQuota``): ``limit`` is absent for unlimited
        storage. Files in a shared drive count against the organisation's pooled storage, which
        the service account cannot see: None there."""
        if self.base()[1] is not None:
            return None
        request = self.api.service().about().get(fields="storageQuota")
        quota = self.api.call(lambda: request.execute(num_retries=0), "read the storage quota").get("storageQuota", {})
        used = int(quota.get("usage") or 0)
        limit = quota.get("limit")
        if limit is None:
            return Usage(free=None, total=None)
        return Usage(free=max(0, int(limit) - used), total=int(limit))

    def stat(self, path: str) -> Entry | None:
        item = self._file(path)
        if item is None or item.get("mimeType", "").startswith(GOOGLE_APPS_PREFIX):
            return None
        return self._entry(path, item)

    def open_read(self, path: str) -> BinaryIO:
        item = self._file(path)
        if item is None:
            raise PermanentStorageError(f"site {self.site}: read {path}: no such file", site=self.site)
        if item.get("mimeType", "").startswith(GOOGLE_APPS_PREFIX):
            raise PermanentStorageError(
                f"site {self.site}: read {path}: a Google Docs/Sheets item has no file content to copy", site=self.site
            )
        file_id, size = item["id"], int(item.get("size") or 0)

        def fetch(start: int, end: int) -> bytes:
            request = self._files().get_media(fileId=file_id, supportsAllDrives=True)
            request.headers["range"] = f"bytes={start}-{end}"
            data = self.api.execute(request, f"read {path}")
            if len(data) > end - start + 1:  # the server ignored the range and sent everything
                data = data[start : end + 1]
            return data

        return io.BufferedReader(
            DriveReader(fetch, size, self.config.chunk_size, site=self.site), buffer_size=1024 * 1024
        )

    def write(self, path: str, stream: ReadableStream, size: int, commit_check: CommitCheck) -> Entry:
        folders, name = self._locate(path)
        small = size <= self.config.multipart_max
        if small:  # read and verify first: one request then creates the file
            md5 = hashlib.md5(usedforsecurity=False)
            data = read_for_commit(stream, size, commit_check, md5, site=self.site, path=path)
        for attempt in (1, 2):
            parent = self._folder_id(folders, create=True)
            assert parent is not None
            existing = self._file(path)
            try:
                if small:
                    item = self._send_small(path, name, parent, existing, data)
                    digest = md5.hexdigest()
                else:
                    media = StreamUpload(stream, size, self.config.chunk_size, commit_check, site=self.site, path=path)
                    item = self._send_resumable(path, name, parent, existing, media)
                    digest = media.md5.hexdigest()
                break
            except DriveNotFound:
                # a cached folder or the old file vanished meanwhile: look again, if no byte was spent yet
                if attempt == 2 or (not small and media.consumed):
                    raise
                self._folders.clear()
        remote_md5 = item.get("md5Checksum")
        if self.config.check_md5 and remote_md5 and remote_md5 != digest:
            self._remove(item["id"], f"remove damaged upload {path}")
            raise VerificationError(
                f"site {self.site}: write {path}: Drive's md5 {remote_md5} differs from the bytes sent ({digest}); "
                "the damaged copy was removed",
                site=self.site,
            )
        return self._entry(path, item)

    def _send_small(
        self, path: str, name: str, parent: str, existing: dict[str, Any] | None, data: bytes
    ) -> dict[str, Any]:
        from googleapiclient.http import MediaInMemoryUpload

        files = self._files()

        def send() -> dict[str, Any]:
            media = MediaInMemoryUpload(data, mimetype="application/octet-stream", resumable=False)
            if existing is not None:
                request = files.update(
                    fileId=existing["id"], media_body=media, fields=FILE_FIELDS, supportsAllDrives=True
                )
            else:
                request = files.create(
                    body={"name": name, "parents": [parent]},
                    media_body=media,
                    fields=FILE_FIELDS,
                    supportsAllDrives=True,
                )
            return request.execute(num_retries=0)

        return self.api.call(send, f"write {path}")

    def _send_resumable(
        self, path: str, name: str, parent: str, existing: dict[str, Any] | None, media: StreamUpload
    ) -> dict[str, Any]:
        files = self._files()
        if existing is not None:
            request = files.update(fileId=existing["id"], media_body=media, fields=FILE_FIELDS, supportsAllDrives=True)
        else:
            request = files.create(
                body={"name": name, "parents": [parent]}, media_body=media, fields=FILE_FIELDS, supportsAllDrives=True
            )
        response = None
        try:
            while response is None:
                _, response = self.api.call(lambda: request.next_chunk(num_retries=0), f"write {path}")
        except BaseException:
            self._cancel(request)
            raise
        return response

    def _cancel(self, request: Any) -> None:
        """Abandon an unfinished resumable session (Drive would expire it after a week anyway)."""
        uri = getattr(request, "resumable_uri", None)
        if not uri:
            return
        with contextlib.suppress(Exception):  # best effort: an unfinished session never becomes a file
            self.api.http().request(uri, "DELETE", headers={"content-length": "0"})

    def _remove(self, file_id: str, what: str) -> None:
        files = self._files()
        if self.config.trash:
            request = files.update(fileId=file_id, body={"trashed": True}, fields="id", supportsAllDrives=True)
        else:
            request = files.delete(fileId=file_id, supportsAllDrives=True)
        with contextlib.suppress(DriveNotFound):  # already gone
            self.api.call(lambda: request.execute(num_retries=0), what)

    def delete(self, path: str) -> None:
        folders, name = self._locate(path)
        parent = self._folder_id(folders, create=False)
        if parent is None:
            return
        for item in self._children(parent, name, folder=False):
            self._remove(item["id"], f"delete {path}")

    def list(self, prefix: str) -> Iterator[Entry]:
        names = remote_parts(prefix, site=self.site)
        start = self._folder_id(names, create=False)
        if start is None:
            return
        head = prefix.rstrip("/")
        pending: list[tuple[str, str]] = [(start, "")]
        while pending:
            folder_id, rel = pending.pop()
            children = self._children(folder_id, None, folder=None)
            for item in sorted(children, key=lambda i: (i.get("name", ""), i["id"])):
                name = item.get("name", "")
                if not name or "/" in name or name in (".", ".."):
                    continue  # not addressable as a path
                child_rel = f"{rel}/{name}" if rel else name
                mime = item.get("mimeType", "")
                if mime == FOLDER_MIME:
                    pending.append((item["id"], child_rel))
                elif not mime.startswith(GOOGLE_APPS_PREFIX):
                    yield self._entry(f"{head}/{child_rel}", item)

    def close(self) -> None:
        self.api.reset()


__all__ = ["GoogleDriveConfig", "GoogleDriveProvider", "http_status", "quote"]
