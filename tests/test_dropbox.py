"""The ``dropbox`` provider: the official Dropbox SDK against a fake Dropbox API v2 on loopback.

The SDK always builds ``https://api.dropboxapi.com`` / ``https://content.dropboxapi.com`` URLs;
the provider's ``api_url``/``content_url`` options reroute them at the ``requests`` transport to
the fake, served on two ports so the fake can check each route arrives at the right host."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sitesync.errors import PermanentStorageError, SiteUnavailableError, VerificationError
from sitesync.providers.base import Provider
from sitesync.providers.conformance import CHECKS, run_conformance
from sitesync.providers.registry import provider_class
from tests.conftest import SITE_ID, make_studio
from tests.fakes.dropbox import FakeDropbox, Member, make_app
from tests.fakes.serve import ServedApp
from tests.provider_flow import replica_states, roundtrip_through_site

SMALL_CHUNKS = {"chunk_size": 4 * 1024 * 1024}  # the smallest Dropbox allows: 9 MiB -> 3 requests


@dataclass
class DropboxEnv:
    fake: FakeDropbox
    api: str
    content: str
    member: Member
    token: str

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"token": self.token, "api_url": self.api, "content_url": self.content, **extra}

    def provider(self, site: str = "dbx", root: str = "/Projects", **extra: Any) -> Provider:
        return provider_class("dropbox").from_options(site, self.options(**extra), {"work": root})


@pytest.fixture(scope="module")
def dropbox_server() -> Iterator[DropboxEnv]:
    fake = FakeDropbox()
    api, content = ServedApp(fake.app), ServedApp(fake.app)
    make_app(fake, api.port, content.port)
    with api, content:
        member = fake.add_member("artist@studio.example")
        yield DropboxEnv(fake, api.url, content.url, member, fake.user_token(member))


@pytest.fixture
def dbx(dropbox_server: DropboxEnv) -> Iterator[DropboxEnv]:
    dropbox_server.fake.clear_faults()
    dropbox_server.fake.corrupt_uploads = 0
    yield dropbox_server
    dropbox_server.fake.clear_faults()


def fresh_root() -> str:
    return f"/Projects {os.urandom(3).hex()}"


# ---------------------------------------------------------------------- the contract


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_contract(dbx: DropboxEnv, check: str) -> None:
    root = fresh_root()
    provider = dbx.provider(root=root, **SMALL_CHUNKS)
    [result] = run_conformance(provider, root, only=[check])
    assert result.ok, f"dropbox fails {check}: {result.detail}"


def test_upload_sessions_and_single_uploads_are_both_used(dbx: DropboxEnv) -> None:
    root = fresh_root()
    provider = dbx.provider(root=root, **SMALL_CHUNKS)
    before = len(dbx.fake.requests)
    for size in (1000, 4 * 1024 * 1024, 9 * 1024 * 1024 + 5, 8 * 1024 * 1024):
        data = os.urandom(size)
        provider.write(f"{root}/s{size}.bin", io.BytesIO(data), size, lambda: None)
        node = dbx.fake.file(dbx.member.home, f"{root}/s{size}.bin")
        assert node is not None and node.content == data
    routes = [r["route"] for r in dbx.fake.requests[before:]]
    assert routes.count("files/upload") == 2
    assert routes.count("files/upload_session/start") == 2 and routes.count("files/upload_session/finish") == 2
    assert routes.count("files/upload_session/append_v2") == 1  # 9 MiB: start 4 + append 4 + finish 1
    assert all(r["status"] == 200 for r in dbx.fake.requests[before:])


def test_rejected_session_upload_creates_nothing(dbx: DropboxEnv) -> None:
    root = fresh_root()
    provider = dbx.provider(root=root, **SMALL_CHUNKS)

    def refuse() -> None:
        raise VerificationError("refused")

    before = len(dbx.fake.requests)
    with pytest.raises(VerificationError):
        provider.write(f"{root}/big.bin", io.BytesIO(os.urandom(9_000_000)), 9_000_000, refuse)
    assert provider.stat(f"{root}/big.bin") is None
    assert "files/upload_session/finish" not in [r["route"] for r in dbx.fake.requests[before:]]


def test_content_hash_mismatch_removes_the_copy(dbx: DropboxEnv) -> None:
    root = fresh_root()
    provider = dbx.provider(root=root, **SMALL_CHUNKS)
    for size in (100, 5 * 1024 * 1024):
        dbx.fake.corrupt_uploads = 1
        with pytest.raises(VerificationError, match="content_hash"):
            provider.write(f"{root}/c{size}", io.BytesIO(os.urandom(size)), size, lambda: None)
        assert provider.stat(f"{root}/c{size}") is None


def test_team_member_in_a_team_folder_by_refresh_token(dbx: DropboxEnv) -> None:
    fake = dbx.fake
    name = f"Show {os.urandom(2).hex()}"
    for other in ("Alpha", "Beta", "Gamma"):  # the folder list pages
        fake.add_team_folder(f"{other} {os.urandom(2).hex()}")
    namespace = fake.add_team_folder(name)
    team_token = fake.team_token()
    options = {"token": team_token, "api_url": dbx.api, "content_url": dbx.content}
    options |= {"member": dbx.member.email, "team_folder": name}
    provider = provider_class("dropbox").from_options("team", options, {"work": "/renders"})
    provider.check()
    provider.write("/renders/a/b.exr", io.BytesIO(b"team data"), 9, lambda: None)
    assert fake.file(namespace, "/renders/a/b.exr").content == b"team data"  # type: ignore[union-attr]
    assert fake.file(dbx.member.home, "/renders/a/b.exr") is None

    key, secret, refresh = fake.add_app(dbx.member)
    options = {
        "refresh_token": refresh,
        "app_key": key,
        "app_secret": secret,
        "api_url": dbx.api,
        "content_url": dbx.content,
    }
    provider = provider_class("dropbox").from_options("refreshing", options, {"work": "/r"})
    provider.write("/r/x.bin", io.BytesIO(b"x"), 1, lambda: None)
    assert fake.file(dbx.member.home, "/r/x.bin") is not None


def test_wrong_tokens_and_unreachable_service_make_the_site_unavailable(
    dbx: DropboxEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.delenv("NO_SUCH_TOKEN", raising=False)
    cases = {
        "Dropbox rejected the token (invalid_access_token": {"token": "sl.bogus-token-value"},
        "cannot reach Dropbox": {"api_url": closed},
        "environment variable NO_SUCH_TOKEN": {"token": "env:NO_SUCH_TOKEN"},
        "operates on a single Dropbox account": {"token": dbx.fake.team_token()},
        "no team member has the email nobody@studio.example": {
            "token": dbx.fake.team_token(),
            "member": "nobody@studio.example",
        },
    }
    for expected, override in cases.items():
        provider = provider_class("dropbox").from_options("dbx", dbx.options(**override), {})
        with pytest.raises(SiteUnavailableError) as err:
            provider.check()
        message = str(err.value)
        assert message.startswith("site dbx: ") and expected in message, message
        assert "\n" not in message and "bogus-token-value" not in message


def test_options_are_validated() -> None:
    cls = provider_class("dropbox")
    for bad, match in [
        ({}, "exactly one of token or refresh_token"),
        ({"refresh_token": "r"}, "needs app_key"),
        ({"token": "t", "team_folder": "x"}, "team_folder needs member"),
        ({"token": "t", "chunk_size": 5_000_000}, "multiple of 4194304"),
    ]:
        with pytest.raises(ValueError, match=match):
            cls.from_options("x", bad, {})


def test_rate_limits_back_off_honouring_retry_after(dbx: DropboxEnv) -> None:
    root = fresh_root()
    provider = dbx.provider(root=root)
    provider.check()
    dbx.fake.inject(503, times=1, route_prefix="files/upload")
    dbx.fake.inject(429, times=2, retry_after=1, route_prefix="files/upload")
    before = len(dbx.fake.requests)
    provider.write(f"{root}/slow.bin", io.BytesIO(b"patience"), 8, lambda: None)
    uploads = [r for r in dbx.fake.requests[before:] if r["route"] == "files/upload"]
    assert [u["status"] for u in uploads] == [503, 429, 429, 200]
    assert uploads[2]["t"] - uploads[1]["t"] >= 0.95 and uploads[3]["t"] - uploads[2]["t"] >= 0.95


def test_sustained_rate_limit_is_site_unavailable(dbx: DropboxEnv) -> None:
    provider = dbx.provider(max_retry_wait=1.5)
    provider.check()
    dbx.fake.inject(429, times=100, retry_after=1, route_prefix="files/")
    with pytest.raises(SiteUnavailableError, match="site dbx: Dropbox keeps asking to slow down"):
        provider.stat("/Projects/x.bin")


def test_download_of_missing_file_is_a_storage_error(dbx: DropboxEnv) -> None:
    with pytest.raises(PermanentStorageError, match="no such file"):
        dbx.provider().open_read("/Projects/missing/none.bin")


# ---------------------------------------------------------------------- the engine


def test_engine_roundtrip_through_dropbox(dbx: DropboxEnv, tmp_path: Path, db_url: str, home: Path) -> None:
    studio = make_studio(tmp_path, db_url, home)
    root = fresh_root()
    try:
        studio.client.add_site("dropbox", "dropbox", [f"work={root}"], dbx.options())
        result = roundtrip_through_site(studio, "dropbox")
        folder = f"{root}/show/seq01/sh010.v1/publish/plateMain/v001/exr"
        for name, data in result["contents"].items():
            assert dbx.fake.file(dbx.member.home, f"{folder}/{name}").content == data  # type: ignore[union-attr]
        assert dbx.token not in str(studio.client.site("dropbox"))
    finally:
        studio.client.close()


def test_throttled_dropbox_does_not_stop_other_sites(
    dbx: DropboxEnv, tmp_path: Path, sqlite_url: str, home: Path
) -> None:
    studio = make_studio(tmp_path, sqlite_url, home)
    try:
        c = studio.client
        c.add_site("dropbox", "dropbox", [f"work={fresh_root()}"], dbx.options(max_retry_wait=1.0))
        c.add_site("backup", "local_drive", [f"work={tmp_path / 'backup'}"], {"create_roots": True})
        c.settings_set("remote_site", "dropbox", project="show")
        c.settings_set("always_accessible_on", "backup", project="show")
        dbx.fake.inject(429, times=10_000, retry_after=1, route_prefix="files/upload")
        rep = studio.publish([studio.write(f"f{i}.bin", os.urandom(100)) for i in range(2)])
        report = studio.sync()
        states = replica_states(studio, rep)
        assert states["backup"] == ["present"] * 2 and states["dropbox"] == ["queued"] * 2
        assert report.failed_attempts == 0
        dbx.fake.clear_faults()
        studio.sync()
        assert replica_states(studio, rep)["dropbox"] == ["present"] * 2
        assert replica_states(studio, rep)[SITE_ID] == ["present"] * 2
    finally:
        studio.client.close()


def test_the_fake_refuses_what_dropbox_refuses(dbx: DropboxEnv) -> None:
    """The fake must not let a wrong request pass, or the tests above would prove nothing."""
    import json

    import requests

    auth = {"Authorization": f"Bearer {dbx.token}"}
    rpc = {**auth, "Content-Type": "application/json"}
    upload = {**auth, "Content-Type": "application/octet-stream"}
    cases = {
        "an upload on the API host": (f"{dbx.api}/2/files/upload", upload, {"path": "/x", "mode": "overwrite"}, b"x"),
        "an unknown argument field": (f"{dbx.api}/2/files/get_metadata", rpc, {"path": "/x", "colour": "red"}, None),
        "a wrong Content-Type": (f"{dbx.api}/2/files/get_metadata", auth, {"path": "/x"}, None),
        "a wrong content_hash": (
            f"{dbx.content}/2/files/upload",
            upload,
            {"path": "/x", "mode": "overwrite", "content_hash": "0" * 64},
            b"x",
        ),
        "no token": (f"{dbx.api}/2/files/get_metadata", {"Content-Type": "application/json"}, {"path": "/x"}, None),
    }
    for label, (url, headers, arg, body) in cases.items():
        if body is None:
            resp = requests.post(url, headers=headers, data=json.dumps(arg), timeout=10)
        else:
            resp = requests.post(url, headers={**headers, "Dropbox-API-Arg": json.dumps(arg)}, data=body, timeout=10)
        assert resp.status_code in (400, 401, 409), f"the fake accepted {label}: {resp.status_code}"


def test_usage_of_an_account_and_of_a_team(dbx: DropboxEnv) -> None:
    fake = dbx.fake
    provider = dbx.provider(root=fresh_root())
    provider.write(f"{provider.roots['work']}/u.bin", io.BytesIO(b"y" * 500), 500, lambda: None)
    used = sum(len(n.content) for n in fake.namespaces[dbx.member.home].values())
    usage = provider.usage()
    assert usage is not None and usage.total == fake.allocated and usage.free == fake.allocated - used
    assert fake.requests[-1]["route"] == "users/get_space_usage" and fake.requests[-1]["status"] == 200
    fake.team_allocated, fake.member_limit = 10 * 1024**3, used + 100
    try:
        team = provider.usage()
    finally:
        fake.team_allocated, fake.member_limit = None, 0
    # the member's own limit is tighter than the team's free space
    assert team is not None and team.total == 10 * 1024**3 and team.free == 100
