"""A fake Google Drive v3 API: the subset sitesync's ``gdrive`` provider uses, strict enough that
a wrong request fails.

It speaks HTTP like Google: an OAuth token endpoint that checks the service account's signed JWT
(RS256, audience, scope) and issues bearer tokens; ``files.list`` with a real parser for the ``q``
language (quotes and backslash escapes, ``and``/``or``/``not``, parentheses), pagination, partial
responses (``fields``) and shared-drive rules (``corpora``/``driveId``/``supportsAllDrives``/
``includeItemsFromAllDrives``); ``files.get`` (metadata, ``alt=media`` with ``Range``);
``files.create`` (metadata, ``uploadType=media|multipart|resumable`` with 256 KiB chunk rules and
``308 Resume Incomplete``); ``files.update`` (metadata, trash, add/removeParents, media);
``files.delete``; ``drives.list``; ``about.get`` (``storageQuota`` only). Unknown query parameters, malformed ``q`` or ``fields``, a wrong
upload protocol or a missing token get 4xx answers as Google gives them.

Tests steer it in-process: ``inject`` queues faults (429, 403 rateLimitExceeded, 5xx), ``corrupt``
damages the next upload, ``requests`` records what arrived.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.gdrive_query import ApiError, Query, _split_top, bad, select_file, select_list

FOLDER = "application/vnd.google-apps.folder"
CHUNK_GRANULARITY = 256 * 1024
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # google-auth always signs for this audience
PAGE_CAP = 7  # the fake never returns more per page, so pagination is always exercised
COMMON_PARAMS = {"alt", "fields", "prettyPrint", "quotaUser"}
BOOL_PARAMS = {"supportsAllDrives", "includeItemsFromAllDrives", "acknowledgeAbuse", "useDomainAdminAccess"}


def not_found(file_id: str) -> ApiError:
    return ApiError(404, f"File not found: {file_id}.", "notFound")


@dataclass
class Item:
    id: str
    name: str
    mime: str
    parents: list[str]
    drive_id: str | None
    content: bytes | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    trashed: bool = False

    def resource(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime,
            "parents": list(self.parents),
            "createdTime": _rfc3339(self.created),
            "modifiedTime": _rfc3339(self.modified),
            "trashed": self.trashed,
        }
        if self.drive_id:
            out["driveId"] = self.drive_id
        if self.content is not None:
            out["size"] = str(len(self.content))
            out["md5Checksum"] = hashlib.md5(self.content).hexdigest()
        return out


@dataclass
class Session:
    metadata: dict[str, Any]
    target: str | None  # file id for an update
    total: int | None
    fields: str | None
    received: bytearray = field(default_factory=bytearray)


@dataclass
class Fault:
    status: int
    reason: str
    retry_after: float | None
    remaining: int
    methods: tuple[str, ...] | None
    path_prefix: str | None


def _rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# ---------------------------------------------------------------------- the service


class FakeDrive:
    """State and HTTP app of the fake Drive. One "user" (the service account) sees My Drive and
    the shared drives it was added to."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.items: dict[str, Item] = {}
        self.drives: dict[str, str] = {}  # shared drive id -> name
        self.sessions: dict[str, Session] = {}
        self.keys: dict[str, str] = {}  # client_email -> public key PEM
        self.tokens: dict[str, dict[str, Any]] = {}  # access token -> claims
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.corrupt_uploads = 0
        self.page_cap = PAGE_CAP
        self.quota_limit: int | None = 15 * 1024**3  # None: unlimited storage (no "limit" field)
        self.url = ""  # set by the test once served
        self._ids = itertools.count(1)
        self.root = self._new_item("My Drive", FOLDER, [], None).id
        self.app = Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/drive/v3/files", self.files_list, methods=["GET"]),
                Route("/drive/v3/files", self.files_create, methods=["POST"]),
                Route("/drive/v3/files/{file_id}", self.files_get, methods=["GET"]),
                Route("/drive/v3/files/{file_id}", self.files_update, methods=["PATCH"]),
                Route("/drive/v3/files/{file_id}", self.files_delete, methods=["DELETE"]),
                Route("/drive/v3/drives", self.drives_list, methods=["GET"]),
                Route("/drive/v3/about", self.about_get, methods=["GET"]),
                Route("/upload/drive/v3/files", self.upload_create, methods=["POST"]),
                Route("/upload/drive/v3/files", self.upload_chunk, methods=["PUT", "DELETE"]),
                Route("/upload/drive/v3/files/{file_id}", self.upload_update, methods=["PATCH"]),
            ]
        )

    # ------------------------------------------------------------------ test controls

    def add_service_account(self, client_email: str, public_key_pem: str) -> None:
        self.keys[client_email] = public_key_pem

    def add_shared_drive(self, name: str) -> str:
        with self.lock:
            drive_id = f"0A{secrets.token_hex(8)}"
            self.drives[drive_id] = name
            self.items[drive_id] = Item(drive_id, name, FOLDER, [], drive_id)
            return drive_id

    def make_folder(self, name: str, parent: str) -> str:
        with self.lock:
            return self._new_item(name, FOLDER, [parent], self.items[parent].drive_id).id

    def make_file(self, name: str, parent: str, content: bytes) -> str:
        with self.lock:
            return self._new_item(name, "application/octet-stream", [parent], self.items[parent].drive_id, content).id

    def inject(
        self,
        status: int,
        *,
        times: int = 1,
        reason: str | None = None,
        retry_after: float | None = None,
        methods: tuple[str, ...] | None = None,
        path_prefix: str | None = None,
    ) -> None:
        default = {429: "rateLimitExceeded", 403: "userRateLimitExceeded"}.get(status, "backendError")
        with self.lock:
            self.faults.append(Fault(status, reason or default, retry_after, times, methods, path_prefix))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def children(self, parent: str) -> list[Item]:
        with self.lock:
            return [i for i in self.items.values() if parent in i.parents and not i.trashed]

    def find_path(self, parent: str, path: str) -> Item | None:
        current: Item | None = self.items[parent]
        for name in path.split("/"):
            matches = [i for i in self.children(current.id) if i.name == name]  # type: ignore[union-attr]
            if len(matches) != 1:
                return None
            current = matches[0]
        return current

    # ------------------------------------------------------------------ helpers

    def _new_item(
        self, name: str, mime: str, parents: list[str], drive_id: str | None, content: bytes | None = None
    ) -> Item:
        item = Item(f"f{next(self._ids):06d}{secrets.token_hex(4)}", name, mime, parents, drive_id, content)
        self.items[item.id] = item
        return item

    def _check_params(self, request: Request, allowed: set[str]) -> dict[str, str]:
        params: dict[str, str] = {}
        for key, value in request.query_params.multi_items():
            if key not in allowed | COMMON_PARAMS:
                raise bad(f"Invalid parameter {key}", key)
            if key in params:
                raise bad(f"Repeated parameter {key}", key)
            if key in BOOL_PARAMS and value not in ("true", "false"):
                raise bad("Invalid boolean value", key)
            params[key] = value
        if params.get("alt", "json") not in ("json", "media"):
            raise bad("Invalid value for alt", "alt")
        return params

    def _authorize(self, request: Request) -> None:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise ApiError(401, "Request had invalid authentication credentials.", "authError")
        claims = self.tokens[auth[7:]]
        if claims["exp"] < time.time():
            raise ApiError(401, "Request had invalid authentication credentials.", "authError")

    def _fault(self, request: Request) -> None:
        with self.lock:
            for fault in self.faults:
                if fault.methods and request.method not in fault.methods:
                    continue
                if fault.path_prefix and not request.url.path.startswith(fault.path_prefix):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                raise ApiError(fault.status, "Injected fault", fault.reason, headers=headers)

    def _visible(self, item: Item, supports_all: bool) -> bool:
        return item.drive_id is None or supports_all

    def _get(self, file_id: str, params: dict[str, str]) -> Item:
        if file_id == "root":
            file_id = self.root
        item = self.items.get(file_id)
        if item is None or not self._visible(item, params.get("supportsAllDrives") == "true"):
            raise not_found(file_id)
        return item

    def _parent(self, parent_id: str, params: dict[str, str]) -> Item:
        parent = self._get(parent_id, params)
        if parent.mime != FOLDER or parent.trashed:
            raise bad(f"The parent {parent_id} is not a folder")
        return parent

    async def _handle(self, request: Request, fn: Any) -> Response:
        entry = {
            "t": time.monotonic(),
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
        }
        self.requests.append(entry)
        try:
            if request.url.path != "/token":
                self._authorize(request)
            self._fault(request)
            response = await fn(request)
        except ApiError as exc:
            response = exc.response()
        entry["status"] = response.status_code
        return response

    # ------------------------------------------------------------------ OAuth

    async def token(self, request: Request) -> Response:
        return await self._handle(request, self._token)

    async def _token(self, request: Request) -> Response:
        from google.auth import jwt

        form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        assertion = str(form.get("assertion", ""))
        try:
            unverified = jwt.decode(assertion, verify=False)
            key = self.keys.get(unverified.get("iss", ""))
            if key is None:
                return JSONResponse(
                    {"error": "invalid_client", "error_description": "The OAuth client was not found."}, status_code=401
                )
            claims = jwt.decode(assertion, certs=key, audience=GOOGLE_TOKEN_AUDIENCE)
        except ValueError as exc:
            return JSONResponse({"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, status_code=400)
        if "https://www.googleapis.com/auth/drive" not in str(claims.get("scope", "")).split():
            return JSONResponse({"error": "invalid_scope", "error_description": "drive scope missing"}, status_code=400)
        token = "ya29." + secrets.token_urlsafe(24)
        self.tokens[token] = {"sub": claims.get("sub"), "iss": claims["iss"], "exp": time.time() + 3600}
        return JSONResponse({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    # ------------------------------------------------------------------ files.list / drives.list

    async def files_list(self, request: Request) -> Response:
        return await self._handle(request, self._files_list)

    async def _files_list(self, request: Request) -> Response:
        params = self._check_params(
            request,
            {
                "q",
                "pageSize",
                "pageToken",
                "corpora",
                "driveId",
                "supportsAllDrives",
                "includeItemsFromAllDrives",
                "orderBy",
                "spaces",
            },
        )
        corpora = params.get("corpora", "user")
        all_drives = params.get("includeItemsFromAllDrives") == "true"
        supports = params.get("supportsAllDrives") == "true"
        drive_id = params.get("driveId")
        if corpora not in ("user", "drive", "allDrives", "domain"):
            raise bad("Invalid Value", "corpora")
        if (corpora == "drive") != (drive_id is not None):
            raise bad("driveId must be set exactly when corpora is drive", "driveId")
        if (corpora in ("drive", "allDrives")) and not (all_drives and supports):
            raise ApiError(
                403,
                "The includeItemsFromAllDrives and supportsAllDrives parameters must be true when corpora is drive or allDrives.",
                "teamDriveParametersRequired",
            )
        if drive_id is not None and drive_id not in self.drives:
            raise ApiError(404, f"Shared drive not found: {drive_id}", "notFound")
        page_size = int(params.get("pageSize", "100"))
        if not 1 <= page_size <= 1000:
            raise bad("Invalid Value", "pageSize")
        query = Query(params["q"]) if "q" in params else None
        with self.lock:
            items = sorted(self.items.values(), key=lambda i: i.id)
            if corpora == "drive":
                items = [i for i in items if i.drive_id == drive_id and i.id != drive_id]
            elif corpora == "user":
                items = [i for i in items if i.drive_id is None and i.id != self.root]
            else:
                items = [i for i in items if i.id not in self.drives and i.id != self.root]
            if query is not None:
                items = [i for i in items if query.matches(i)]
            resources = [i.resource() for i in items]
        start = 0
        if "pageToken" in params:
            try:
                start = int(params["pageToken"].removeprefix("page-"))
            except ValueError:
                raise bad("Invalid Value", "pageToken") from None
        end = start + min(page_size, self.page_cap)
        token = f"page-{end}" if end < len(resources) else None
        return JSONResponse(select_list(resources[start:end], token, params.get("fields"), "files"))

    async def drives_list(self, request: Request) -> Response:
        return await self._handle(request, self._drives_list)

    async def _drives_list(self, request: Request) -> Response:
        params = self._check_params(request, {"pageSize", "pageToken", "useDomainAdminAccess"})
        page_size = int(params.get("pageSize", "10"))
        if not 1 <= page_size <= 100:
            raise bad("Invalid Value", "pageSize")
        drives = [{"kind": "drive#drive", "id": k, "name": v} for k, v in sorted(self.drives.items())]
        start = int(params.get("pageToken", "0") or 0)
        end = start + min(page_size, 2)
        token = str(end) if end < len(drives) else None
        return JSONResponse(select_list(drives[start:end], token, params.get("fields"), "drives"))

    # ------------------------------------------------------------------ about.get

    async def about_get(self, request: Request) -> Response:
        return await self._handle(request, self._about_get)

    async def _about_get(self, request: Request) -> Response:
        params = self._check_params(request, set())
        fields = params.get("fields")
        if not fields:
            raise bad("The 'fields' parameter is required for this method.", "fields")
        wanted = _split_top(fields)
        if any(name != "storageQuota" for name in wanted):
            raise bad("Invalid field selection", "fields")
        with self.lock:
            # My Drive files count against the account; shared drives have their own pool
            in_drive = sum(len(i.content or b"") for i in self.items.values() if i.drive_id is None and not i.trashed)
            in_trash = sum(len(i.content or b"") for i in self.items.values() if i.drive_id is None and i.trashed)
        quota = {
            "usage": str(in_drive + in_trash),
            "usageInDrive": str(in_drive),
            "usageInDriveTrash": str(in_trash),
        }
        if self.quota_limit is not None:
            quota["limit"] = str(self.quota_limit)
        return JSONResponse({"storageQuota": quota})

    # ------------------------------------------------------------------ files.get / update / delete

    async def files_get(self, request: Request) -> Response:
        return await self._handle(request, self._files_get)

    async def _files_get(self, request: Request) -> Response:
        params = self._check_params(request, {"supportsAllDrives", "acknowledgeAbuse"})
        item = self._get(request.path_params["file_id"], params)
        if params.get("alt") != "media":
            return JSONResponse(select_file(item.resource(), params.get("fields")))
        if "fields" in params:
            raise bad("fields cannot be used with alt=media", "fields")
        if item.content is None:
            raise ApiError(403, "Only files with binary content can be downloaded.", "fileNotDownloadable")
        data, size = item.content, len(item.content)
        header = request.headers.get("range")
        if header is None:
            return Response(data, media_type="application/octet-stream")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", header.strip())
        if not m:
            raise bad("Invalid Range header")
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
        if start >= size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        return Response(
            data[start : end + 1],
            status_code=206,
            media_type="application/octet-stream",
            headers={"Content-Range": f"bytes {start}-{end}/{size}"},
        )

    async def files_update(self, request: Request) -> Response:
        return await self._handle(request, self._files_update)

    async def _files_update(self, request: Request) -> Response:
        params = self._check_params(request, {"supportsAllDrives", "addParents", "removeParents"})
        body = await self._json_body(request)
        with self.lock:
            item = self._get(request.path_params["file_id"], params)
            self._apply_metadata(item, body, params, allow={"name", "trashed"})
            item.modified = time.time()
            return JSONResponse(select_file(item.resource(), params.get("fields")))

    def _apply_metadata(self, item: Item, body: dict[str, Any], params: dict[str, str], allow: set[str]) -> None:
        unknown = set(body) - allow
        if unknown:
            raise bad(f"Unsupported or read-only field(s): {sorted(unknown)}")
        if "name" in body:
            if not isinstance(body["name"], str) or not body["name"]:
                raise bad("Invalid name")
            item.name = body["name"]
        if "trashed" in body:
            if not isinstance(body["trashed"], bool):
                raise bad("Invalid trashed value")
            item.trashed = body["trashed"]
        for pid in filter(None, params.get("addParents", "").split(",")):
            parent = self._parent(pid, params)
            if parent.drive_id != item.drive_id:
                raise bad("Moving between drives is not supported by the fake")
            if pid not in item.parents:
                item.parents.append(pid)
        for pid in filter(None, params.get("removeParents", "").split(",")):
            if pid not in item.parents:
                raise bad(f"{pid} is not a parent", "removeParents")
            item.parents.remove(pid)

    async def files_delete(self, request: Request) -> Response:
        return await self._handle(request, self._files_delete)

    async def _files_delete(self, request: Request) -> Response:
        params = self._check_params(request, {"supportsAllDrives"})
        with self.lock:
            item = self._get(request.path_params["file_id"], params)
            doomed = [item.id]
            while doomed:
                current = doomed.pop()
                self.items.pop(current, None)
                doomed += [i.id for i in self.items.values() if current in i.parents]
        return Response(status_code=204)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        if not raw:
            return {}
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise bad("Metadata must be sent as application/json")
        try:
            body = json.loads(raw)
        except ValueError:
            raise bad("Invalid JSON payload") from None
        if not isinstance(body, dict):
            raise bad("Invalid JSON payload")
        return body

    # ------------------------------------------------------------------ files.create

    async def files_create(self, request: Request) -> Response:
        return await self._handle(request, self._files_create)

    async def _files_create(self, request: Request) -> Response:
        params = self._check_params(request, {"supportsAllDrives"})
        body = await self._json_body(request)
        with self.lock:
            item = self._create(body, params, None)
            return JSONResponse(select_file(item.resource(), params.get("fields")))

    def _create(self, body: dict[str, Any], params: dict[str, str], content: bytes | None) -> Item:
        unknown = set(body) - {"name", "mimeType", "parents"}
        if unknown:
            raise bad(f"Unsupported field(s): {sorted(unknown)}")
        parents = body.get("parents") or [self.root]
        if not isinstance(parents, list) or len(parents) != 1:
            raise bad("A file must have exactly one parent")
        parent = self._parent(parents[0], params)
        mime = body.get("mimeType") or "application/octet-stream"
        if mime == FOLDER and content is not None:
            raise bad("A folder cannot have content")
        if mime != FOLDER and content is None:
            content = b""
        return self._new_item(body.get("name") or "Untitled", mime, [parent.id], parent.drive_id, content)

    def _store(self, content: bytes) -> bytes:
        if self.corrupt_uploads > 0 and content:
            self.corrupt_uploads -= 1
            return bytes([content[0] ^ 0xFF]) + content[1:]
        return content

    # ------------------------------------------------------------------ uploads

    async def upload_create(self, request: Request) -> Response:
        return await self._handle(request, lambda r: self._upload(r, None))

    async def upload_update(self, request: Request) -> Response:
        return await self._handle(request, lambda r: self._upload(r, r.path_params["file_id"]))

    async def _upload(self, request: Request, target: str | None) -> Response:
        params = self._check_params(request, {"uploadType", "supportsAllDrives"})
        kind = params.get("uploadType")
        if kind == "media":
            data = await request.body()
            with self.lock:
                if target is None:
                    item = self._create({}, params, self._store(data))
                else:
                    item = self._get(target, params)
                    self._replace(item, self._store(data))
                return JSONResponse(select_file(item.resource(), params.get("fields")))
        if kind == "multipart":
            metadata, data = self._multipart(request.headers.get("content-type", ""), await request.body())
            with self.lock:
                if target is None:
                    item = self._create(metadata, params, self._store(data))
                else:
                    item = self._get(target, params)
                    self._apply_metadata(item, metadata, params, allow={"name"})
                    self._replace(item, self._store(data))
                return JSONResponse(select_file(item.resource(), params.get("fields")))
        if kind == "resumable":
            metadata = await self._json_body(request)
            total = request.headers.get("x-upload-content-length")
            with self.lock:
                if target is None:
                    self._create_check(metadata, params)
                else:
                    self._get(target, params)
                sid = secrets.token_urlsafe(16)
                self.sessions[sid] = Session(metadata, target, int(total) if total else None, params.get("fields"))
            location = f"{self.url}/upload/drive/v3/files?uploadType=resumable&upload_id={sid}"
            return Response(status_code=200, headers={"Location": location})
        raise bad("Invalid upload type; use media, multipart or resumable", "uploadType")

    def _create_check(self, metadata: dict[str, Any], params: dict[str, str]) -> None:
        unknown = set(metadata) - {"name", "mimeType", "parents"}
        if unknown:
            raise bad(f"Unsupported field(s): {sorted(unknown)}")
        for pid in metadata.get("parents") or []:
            self._parent(pid, params)

    def _replace(self, item: Item, data: bytes) -> None:
        if item.mime == FOLDER:
            raise bad("A folder cannot have content")
        item.content = data
        item.modified = time.time()

    def _multipart(self, content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
        m = re.match(r'multipart/related;\s*boundary="?([^";]+)"?', content_type)
        if not m:
            raise bad("uploadType=multipart needs a multipart/related body")
        delimiter = b"--" + m.group(1).encode()
        # RFC 2046: the line break before a delimiter belongs to it; one message uses one kind
        eol = b"\r\n" if body.startswith(delimiter + b"\r\n") else b"\n"
        if not body.startswith(delimiter + eol):
            raise bad("A multipart body must start with its boundary")
        chunks = body[len(delimiter + eol) :].split(eol + delimiter)
        if len(chunks) != 3 or not chunks[2].startswith(b"--"):
            raise bad("A multipart upload has exactly two parts: metadata and media")
        parts = []
        for chunk in chunks[:2]:
            chunk = chunk.removeprefix(eol)
            head, sep, data = chunk.partition(eol + eol)
            if not sep:
                raise bad("A multipart part has no header/body separator")
            headers = dict(
                (k.strip().lower(), v.strip())
                for k, _, v in (line.partition(":") for line in head.decode().split(eol.decode()))
            )
            parts.append((headers, data))
        (meta_headers, meta), (_, data) = parts
        if not meta_headers.get("content-type", "").startswith("application/json"):
            raise bad("The first part of a multipart upload must be JSON metadata")
        return json.loads(meta), data

    async def upload_chunk(self, request: Request) -> Response:
        return await self._handle(request, self._upload_chunk)

    async def _upload_chunk(self, request: Request) -> Response:
        params = self._check_params(request, {"uploadType", "upload_id"})
        if params.get("uploadType") != "resumable":
            raise bad("Invalid upload type", "uploadType")
        sid = params.get("upload_id", "")
        session = self.sessions.get(sid)
        if session is None:
            raise ApiError(404, "No such upload session", "notFound")
        if request.method == "DELETE":
            self.sessions.pop(sid, None)
            return Response(status_code=499)
        data = await request.body()
        header = request.headers.get("content-range")
        received = len(session.received)
        if header is None:
            if data:
                raise bad("A chunk needs a Content-Range header")
            total = received  # an empty final PUT (0-byte file)
        else:
            m = re.fullmatch(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)", header.strip())
            if not m:
                raise bad("Invalid Content-Range")
            total = None if m.group(3) == "*" else int(m.group(3))
            if session.total is not None and total is not None and total != session.total:
                raise bad("Content-Range total differs from X-Upload-Content-Length")
            if m.group(1) is None:  # status query
                if data:
                    raise bad("A status query has no body")
                if total is not None and received == total and received == 0:
                    pass
                else:
                    return self._incomplete(received)
            else:
                start, end = int(m.group(1)), int(m.group(2))
                if start != received:
                    raise bad(f"Chunk starts at {start}, expected {received}")
                if end - start + 1 != len(data):
                    raise bad("Content-Range does not match the body length")
                final = total is not None and end + 1 == total
                if not final and len(data) % CHUNK_GRANULARITY:
                    raise bad("Chunks other than the last must be multiples of 256 KiB")
                session.received += data
                if not final:
                    return self._incomplete(len(session.received))
        if total is not None and len(session.received) != total:
            return self._incomplete(len(session.received))
        with self.lock:
            self.sessions.pop(sid, None)
            content = self._store(bytes(session.received))
            if session.target is None:
                item = self._create(session.metadata, {"supportsAllDrives": "true"}, content)
            else:
                item = self._get(session.target, {"supportsAllDrives": "true"})
                self._replace(item, content)
            return JSONResponse(select_file(item.resource(), session.fields))

    def _incomplete(self, received: int) -> Response:
        headers = {"Range": f"bytes=0-{received - 1}"} if received else {}
        return Response(status_code=308, headers=headers)
