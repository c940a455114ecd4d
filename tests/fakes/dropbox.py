"""A fake Dropbox API v2: the routes sitesync's ``dropbox`` provider uses, over real HTTP.

Arguments are decoded and results encoded with the SDK's own Stone type definitions (generated
from Dropbox's API spec) in strict mode, so an unknown field or a wrong type is a 400 as on Dropbox.
It checks what Dropbox checks: bearer tokens (user, team + ``Dropbox-API-Select-User``, refreshed
ones), ``Dropbox-API-Path-Root`` namespaces (team folders), route hosts (RPC on the API host,
uploads/downloads on the content host), ``Content-Type``, ``content_hash`` of every uploaded body,
upload-session offsets, case-insensitive paths. Tests steer it in-process (``inject`` faults,
``corrupt_uploads``); ``requests`` records what arrived.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from dropbox import check, common, files, team, team_common, users
from dropbox.content_hash import content_hash
from dropbox.stone_serializers import json_compat_obj_decode, json_compat_obj_encode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

ROUTES = {
    route.name + (f"_v{route.version}" if route.version > 1 else ""): route
    for route in (
        files.get_metadata,
        files.list_folder,
        files.list_folder_continue,
        files.delete_v2,
        files.upload,
        files.upload_session_start,
        files.upload_session_append_v2,
        files.upload_session_finish,
        files.download,
    )
}
OTHER_ROUTES = {
    "check/user": check.user,
    "team/members/get_info_v2": team.members_get_info_v2,
    "users/get_space_usage": users.get_space_usage,
}
TEAM_ROUTES = {
    "team/team_folder/list": team.team_folder_list,
    "team/team_folder/list/continue": team.team_folder_list_continue,
}
PAGE = 5  # list_folder pages, so continue is always exercised


class DbxError(Exception):
    def __init__(self, route: Any, error: Any, summary: str, status: int = 409) -> None:
        super().__init__(summary)
        self.route, self.error, self.summary, self.status = route, error, summary, status


def bad_request(route_name: str, message: str) -> Response:
    return PlainTextResponse(f'Error in call to API function "{route_name}": {message}', status_code=400)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)


@dataclass
class Node:
    display: str  # path as written
    folder: bool
    content: bytes = b""
    id: str = field(default_factory=lambda: "id:" + secrets.token_urlsafe(12))
    rev: str = field(default_factory=lambda: secrets.token_hex(8) + "1")
    modified: dt.datetime = field(default_factory=_now)

    def metadata(self) -> Any:
        name = self.display.rsplit("/", 1)[-1]
        if self.folder:
            return files.FolderMetadata(
                name=name, id=self.id, path_lower=self.display.lower(), path_display=self.display
            )
        return files.FileMetadata(
            name=name,
            id=self.id,
            client_modified=self.modified,
            server_modified=self.modified,
            rev=self.rev,
            size=len(self.content),
            path_lower=self.display.lower(),
            path_display=self.display,
            content_hash=content_hash(self.content),
            is_downloadable=True,
        )


@dataclass
class Member:
    member_id: str
    email: str
    home: str  # namespace id


@dataclass
class Fault:
    status: int
    remaining: int
    retry_after: int | None
    route_prefix: str | None


class FakeDropbox:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.namespaces: dict[str, dict[str, Node]] = {}  # namespace id -> lower path -> node
        self.members: dict[str, Member] = {}
        self.team_folders: dict[str, str] = {}  # namespace id -> name
        self.user_tokens: dict[str, str] = {}  # token -> member id
        self.team_tokens: set[str] = set()
        self.apps: dict[str, str] = {}  # app key -> secret
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (app key, member id)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.cursors: dict[str, list[Any]] = {}
        self.faults: list[Fault] = []
        self.requests: list[dict[str, Any]] = []
        self.corrupt_uploads = 0
        # users/get_space_usage: an individual account's allocation, or a team's (team_allocated set)
        self.allocated = 2 * 1024**4
        self.team_allocated: int | None = None
        self.member_limit = 0  # a team's per-member limit (0: none)
        self._ns = itertools.count(1000)
        self.app = Starlette(
            routes=[
                Route("/oauth2/token", self.token, methods=["POST"]),
                Route("/2/{route:path}", self.dispatch, methods=["POST"]),
            ]
        )

    # ------------------------------------------------------------------ test controls

    def add_member(self, email: str) -> Member:
        with self.lock:
            ns = str(next(self._ns))
            self.namespaces[ns] = {}
            member = Member("dbmid:" + secrets.token_urlsafe(16), email, ns)
            self.members[member.member_id] = member
            return member

    def user_token(self, member: Member) -> str:
        token = "sl.u." + secrets.token_urlsafe(20)
        self.user_tokens[token] = member.member_id
        return token

    def team_token(self) -> str:
        token = "sl.t." + secrets.token_urlsafe(20)
        self.team_tokens.add(token)
        return token

    def add_app(self, member: Member) -> tuple[str, str, str]:
        key, secret, refresh = secrets.token_hex(6), secrets.token_hex(8), secrets.token_urlsafe(24)
        self.apps[key] = secret
        self.refresh_tokens[refresh] = (key, member.member_id)
        return key, secret, refresh

    def add_team_folder(self, name: str) -> str:
        with self.lock:
            ns = str(next(self._ns))
            self.namespaces[ns] = {}
            self.team_folders[ns] = name
            return ns

    def inject(
        self, status: int, *, times: int = 1, retry_after: int | None = None, route_prefix: str | None = None
    ) -> None:
        with self.lock:
            self.faults.append(Fault(status, times, retry_after, route_prefix))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def file(self, namespace: str, path: str) -> Node | None:
        node = self.namespaces[namespace].get(path.lower())
        return None if node is None or node.folder else node

    # ------------------------------------------------------------------ OAuth

    async def token(self, request: Request) -> Response:
        from urllib.parse import parse_qs

        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self.requests.append({"t": time.monotonic(), "route": "oauth2/token"})
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        entry = self.refresh_tokens.get(form.get("refresh_token", ""))
        if entry is None or form.get("client_id") != entry[0] or form.get("client_secret") != self.apps[entry[0]]:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "refresh token is invalid"}, status_code=400
            )
        token = self.user_token(self.members[entry[1]])
        return JSONResponse({"access_token": token, "expires_in": 14400, "token_type": "bearer"})

    # ------------------------------------------------------------------ dispatch

    async def dispatch(self, request: Request) -> Response:
        name = request.path_params["route"]
        entry = {"t": time.monotonic(), "route": name, "host": request.headers.get("x-fake-host", "")}
        self.requests.append(entry)
        response = await self._dispatch(request, name)
        entry["status"] = response.status_code
        return response

    async def _dispatch(self, request: Request, name: str) -> Response:
        route = ROUTES.get(name.removeprefix("files/")) if name.startswith("files/") else None
        route = route or OTHER_ROUTES.get(name) or TEAM_ROUTES.get(name)
        if route is None:
            return PlainTextResponse("Unknown API function", status_code=404)
        style = route.attrs["style"] or "rpc"
        want_host = request.app.state.content if route.attrs["host"] == "content" else request.app.state.api
        if request.url.port != want_host:
            return bad_request(name, f"this function lives on the {route.attrs['host']} host")
        # authentication
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        is_team = token in self.team_tokens
        if not auth.startswith("Bearer ") or not (is_team or token in self.user_tokens):
            return JSONResponse(
                {"error_summary": "invalid_access_token/..", "error": {".tag": "invalid_access_token"}}, status_code=401
            )
        member: Member | None = None
        if name in TEAM_ROUTES or name == "team/members/get_info_v2":
            if not is_team:
                return bad_request(name, "this API function needs a team access token")
        elif is_team:
            selected = request.headers.get("dropbox-api-select-user")
            if not selected:
                return bad_request(
                    name,
                    "This API function operates on a single Dropbox account, but the OAuth 2 access token you "
                    'provided is for an entire Dropbox Business team. Use the "Dropbox-API-Select-User" header.',
                )
            member = self.members.get(selected)
            if member is None:
                return bad_request(name, "Invalid select user id format")
        else:
            if request.headers.get("dropbox-api-select-user"):
                return bad_request(name, "Dropbox-API-Select-User needs a team token")
            member = self.members[self.user_tokens[token]]
        # argument
        body = await request.body()
        try:
            if style == "rpc":
                if request.headers.get("content-type") != "application/json":
                    return bad_request(name, 'Bad HTTP "Content-Type" header; expecting "application/json"')
                raw_arg = body.decode()
                body = b""
            else:
                raw_arg = request.headers.get("dropbox-api-arg", "")
                if style == "upload" and request.headers.get("content-type") != "application/octet-stream":
                    return bad_request(name, 'Bad HTTP "Content-Type" header; expecting "application/octet-stream"')
                if style == "download" and body:
                    return bad_request(name, "a download has no request body")
            arg = json_compat_obj_decode(route.arg_type, json.loads(raw_arg or "null"), strict=True)
        except Exception as exc:
            return bad_request(name, f"could not decode input as JSON: {exc}")
        # faults
        with self.lock:
            for fault in self.faults:
                if fault.route_prefix and not name.startswith(fault.route_prefix):
                    continue
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                if fault.status == 429:
                    retry = fault.retry_after if fault.retry_after is not None else 1
                    return JSONResponse(
                        {
                            "error_summary": "too_many_requests/..",
                            "error": {"reason": {".tag": "too_many_requests"}, "retry_after": retry},
                        },
                        status_code=429,
                        headers={"Retry-After": str(retry)},
                    )
                return PlainTextResponse("Internal Server Error", status_code=fault.status)
        namespace = member.home if member else ""
        root = request.headers.get("dropbox-api-path-root")
        if root is not None:
            try:
                path_root = json_compat_obj_decode(common.PathRoot_validator, json.loads(root), strict=True)
            except Exception as exc:
                return bad_request(name, f"bad Dropbox-API-Path-Root: {exc}")
            if path_root.is_namespace_id():
                namespace = path_root.get_namespace_id()
                if namespace not in self.namespaces or (
                    namespace not in self.team_folders and namespace != member.home
                ):  # type: ignore[union-attr]
                    error = common.PathRootError.no_permission
                    return JSONResponse(
                        {
                            "error_summary": "no_permission/..",
                            "error": json_compat_obj_encode(common.PathRootError_validator, error),
                        },
                        status_code=422,
                    )
        hashed = "content_hash" in getattr(arg, "_all_field_names_", ()) and arg.content_hash is not None
        if hashed and arg.content_hash != content_hash(body):
            return self._error(route, _error_class(route).content_hash_mismatch, "content_hash_mismatch/")
        try:
            with self.lock:
                result = getattr(self, "r_" + name.replace("/", "_"))(arg, body, namespace, member)
        except DbxError as exc:
            if exc.status == 400:
                return bad_request(name, exc.summary)
            return self._error(exc.route, exc.error, exc.summary)
        if style == "download":
            meta, content = result
            header = json.dumps(json_compat_obj_encode(route.result_type, meta), ensure_ascii=True)
            return Response(content, media_type="application/octet-stream", headers={"Dropbox-API-Result": header})
        encoded = None if result is None else json_compat_obj_encode(route.result_type, result)
        return Response(json.dumps(encoded), media_type="application/json")

    def _error(self, route: Any, error: Any, summary: str) -> Response:
        body = {"error_summary": summary + "..", "error": json_compat_obj_encode(route.error_type, error)}
        return JSONResponse(body, status_code=409)

    # ------------------------------------------------------------------ paths

    def _tree(self, namespace: str) -> dict[str, Node]:
        return self.namespaces[namespace]

    def _lookup(self, namespace: str, path: str) -> Node | None:
        if path in ("", "/"):
            return Node("", True)
        return self._tree(namespace).get(path.lower())

    def _check_path(self, route: Any, path: str) -> None:
        if path and (not path.startswith("/") or path.endswith("/") or "//" in path):
            if route in (files.upload, files.upload_session_finish):
                raise DbxError(
                    route, _write_failure(route, files.WriteError.malformed_path(None)), "path/malformed_path/"
                )
            raise DbxError(route, _lookup_error(route, files.LookupError.malformed_path(None)), "path/malformed_path/")

    def _store(self, route: Any, namespace: str, path: str, content: bytes, mode: Any) -> Node:
        self._check_path(route, path)
        if not mode.is_overwrite():
            raise DbxError(route, None, "the fake supports WriteMode.overwrite only", status=400)
        tree = self._tree(namespace)
        parts = path.strip("/").split("/")
        for i in range(1, len(parts)):
            folder = "/" + "/".join(parts[:i])
            node = tree.get(folder.lower())
            if node is not None and not node.folder:
                conflict = files.WriteError.conflict(files.WriteConflictError.file_ancestor)
                raise DbxError(route, _write_failure(route, conflict), "path/conflict/file_ancestor/")
            if node is None:
                tree[folder.lower()] = Node(folder, True)
        existing = tree.get(path.lower())
        if existing is not None and existing.folder:
            conflict = files.WriteError.conflict(files.WriteConflictError.folder)
            raise DbxError(route, _write_failure(route, conflict), "path/conflict/folder/")
        if self.corrupt_uploads and content:
            self.corrupt_uploads -= 1
            content = bytes([content[0] ^ 0xFF]) + content[1:]
        node = Node(existing.display if existing else path, False, content)
        if existing:
            node.id = existing.id
        tree[path.lower()] = node
        return node

    # ------------------------------------------------------------------ routes

    def r_check_user(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        return check.EchoResult(result=arg.query)

    def r_users_get_space_usage(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        used = sum(len(n.content) for n in self.namespaces[member.home].values()) if member else 0
        if self.team_allocated is None:
            allocation = users.SpaceAllocation.individual(users.IndividualSpaceAllocation(allocated=self.allocated))
        else:
            team_used = sum(len(n.content) for tree in self.namespaces.values() for n in tree.values())
            allocation = users.SpaceAllocation.team(
                users.TeamSpaceAllocation(
                    used=team_used,
                    allocated=self.team_allocated,
                    user_within_team_space_allocated=self.member_limit,
                    user_within_team_space_limit_type=team_common.MemberSpaceLimitType.stop_sync
                    if self.member_limit
                    else team_common.MemberSpaceLimitType.off,
                    user_within_team_space_used_cached=used,
                )
            )
        return users.SpaceUsage(used=used, allocation=allocation)

    def r_team_members_get_info_v2(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        out = []
        for selector in arg.members:
            found = next(
                (
                    m
                    for m in self.members.values()
                    if (selector.is_email() and m.email == selector.get_email())
                    or (selector.is_team_member_id() and m.member_id == selector.get_team_member_id())
                ),
                None,
            )
            if found is None:
                out.append(team.MembersGetInfoItemV2.id_not_found(str(selector)))
                continue
            profile = team.TeamMemberProfile(
                team_member_id=found.member_id,
                email=found.email,
                email_verified=True,
                status=team.TeamMemberStatus.active,
                name=users.Name(
                    given_name="A", surname="B", familiar_name="A", display_name="A B", abbreviated_name="AB"
                ),
                membership_type=team.TeamMembershipType.full,
                groups=[],
                member_folder_id=found.home,
                root_folder_id=found.home,
            )
            out.append(team.MembersGetInfoItemV2.member_info(team.TeamMemberInfoV2(profile=profile)))
        return team.MembersGetInfoV2Result(members_info=out)

    def _team_folder_page(self, start: int) -> Any:
        items = sorted(self.team_folders.items())
        page = items[start : start + 2]
        more = start + 2 < len(items)
        folders = [
            team.TeamFolderMetadata(
                team_folder_id=ns,
                name=name,
                status=team.TeamFolderStatus.active,
                is_team_shared_dropbox=False,
                sync_setting=files.SyncSetting.default,
                content_sync_settings=[],
            )
            for ns, name in page
        ]
        return team.TeamFolderListResult(team_folders=folders, cursor=f"tf-{start + 2}", has_more=more)

    def r_team_team_folder_list(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        return self._team_folder_page(0)

    def r_team_team_folder_list_continue(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        return self._team_folder_page(int(arg.cursor.removeprefix("tf-")))

    def r_files_get_metadata(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        self._check_path(files.get_metadata, arg.path)
        node = self._lookup(ns, arg.path)
        if node is None or not arg.path:
            raise DbxError(
                files.get_metadata, files.GetMetadataError.path(files.LookupError.not_found), "path/not_found/"
            )
        return node.metadata()

    def r_files_list_folder(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        self._check_path(files.list_folder, arg.path)
        node = self._lookup(ns, arg.path)
        if node is None or not node.folder:
            error = files.LookupError.not_found if node is None else files.LookupError.not_folder
            raise DbxError(files.list_folder, files.ListFolderError.path(error), "path/not_found/")
        base = arg.path.lower().rstrip("/") + "/"
        entries = [
            n.metadata()
            for key, n in sorted(self._tree(ns).items())
            if key.startswith(base) and (arg.recursive or "/" not in key[len(base) :])
        ]
        cursor = secrets.token_hex(8)
        self.cursors[cursor] = entries
        return self._page(cursor)

    def _page(self, cursor: str) -> Any:
        entries = self.cursors[cursor]
        page, rest = entries[:PAGE], entries[PAGE:]
        self.cursors[cursor] = rest
        return files.ListFolderResult(entries=page, cursor=cursor, has_more=bool(rest))

    def r_files_list_folder_continue(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        if arg.cursor not in self.cursors:
            raise DbxError(files.list_folder_continue, files.ListFolderContinueError.reset, "reset/")
        return self._page(arg.cursor)

    def r_files_delete_v2(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        self._check_path(files.delete_v2, arg.path)
        tree = self._tree(ns)
        node = tree.get(arg.path.lower())
        if node is None:
            raise DbxError(
                files.delete_v2, files.DeleteError.path_lookup(files.LookupError.not_found), "path_lookup/not_found/"
            )
        prefix = arg.path.lower() + "/"
        for key in [k for k in tree if k == arg.path.lower() or k.startswith(prefix)]:
            del tree[key]
        return files.DeleteResult(metadata=node.metadata())

    def r_files_upload(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        if len(body) > 150 * 1024 * 1024:
            raise DbxError(files.upload, files.UploadError.payload_too_large, "payload_too_large/")
        return self._store(files.upload, ns, arg.path, body, arg.mode).metadata()

    def r_files_upload_session_start(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        sid = secrets.token_urlsafe(12)
        self.sessions[sid] = {"data": bytearray(body), "closed": bool(arg.close), "ns": ns}
        return files.UploadSessionStartResult(session_id=sid)

    def _session(self, route: Any, cursor: Any, ns: str, error_cls: Any) -> dict[str, Any]:
        session = self.sessions.get(cursor.session_id)
        if session is None or session["ns"] != ns:
            raise DbxError(route, error_cls.not_found, "not_found/")
        if cursor.offset != len(session["data"]):
            offset = files.UploadSessionOffsetError(correct_offset=len(session["data"]))
            raise DbxError(route, error_cls.incorrect_offset(offset), "incorrect_offset/")
        return session

    def r_files_upload_session_append_v2(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        session = self._session(files.upload_session_append_v2, arg.cursor, ns, files.UploadSessionAppendError)
        if session["closed"]:
            raise DbxError(files.upload_session_append_v2, files.UploadSessionAppendError.closed, "closed/")
        session["data"] += body
        session["closed"] = bool(arg.close)
        return None

    def r_files_upload_session_finish(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        route = files.upload_session_finish
        lookup = files.UploadSessionLookupError
        session = self.sessions.get(arg.cursor.session_id)
        if session is None or session["ns"] != ns:
            raise DbxError(
                route, files.UploadSessionFinishError.lookup_failed(lookup.not_found), "lookup_failed/not_found/"
            )
        if arg.cursor.offset != len(session["data"]):
            offset = files.UploadSessionOffsetError(correct_offset=len(session["data"]))
            raise DbxError(
                route,
                files.UploadSessionFinishError.lookup_failed(lookup.incorrect_offset(offset)),
                "lookup_failed/incorrect_offset/",
            )
        del self.sessions[arg.cursor.session_id]
        return self._store(route, ns, arg.commit.path, bytes(session["data"]) + body, arg.commit.mode).metadata()

    def r_files_download(self, arg: Any, body: bytes, ns: str, member: Member | None) -> Any:
        self._check_path(files.download, arg.path)
        node = self._lookup(ns, arg.path)
        if node is None or node.folder:
            error = files.LookupError.not_found if node is None else files.LookupError.not_file
            raise DbxError(files.download, files.DownloadError.path(error), "path/not_found/")
        return node.metadata(), node.content


def _error_class(route: Any) -> Any:
    return {
        "upload": files.UploadError,
        "upload_session/start": files.UploadSessionStartError,
        "upload_session/append": files.UploadSessionAppendError,
        "upload_session/finish": files.UploadSessionFinishError,
    }[route.name]


def _write_failure(route: Any, error: Any) -> Any:
    if route is files.upload:
        return files.UploadError.path(files.UploadWriteFailed(reason=error, upload_session_id=""))
    return files.UploadSessionFinishError.path(error)


def _lookup_error(route: Any, error: Any) -> Any:
    if route is files.delete_v2:
        return files.DeleteError.path_lookup(error)
    if route is files.list_folder:
        return files.ListFolderError.path(error)
    if route is files.download:
        return files.DownloadError.path(error)
    return files.GetMetadataError.path(error)


def make_app(fake: FakeDropbox, api_port: int, content_port: int) -> Any:
    fake.app.state.api = api_port
    fake.app.state.content = content_port
    return fake.app
