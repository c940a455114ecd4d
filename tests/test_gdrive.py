"""The ``gdrive`` provider: the real google-api-python-client and google-auth against a fake Drive
v3 server on loopback (no real Drive is reachable here). Credentials are a real service-account
key file with a locally generated RSA key; the fake's token endpoint verifies the signed JWT."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sitesync.errors import PermanentStorageError, SiteUnavailableError, VerificationError
from sitesync.providers.base import Provider
from sitesync.providers.conformance import CHECKS, run_conformance
from sitesync.providers.registry import provider_class
from tests.conftest import SITE_ID, define_site, make_studio
from tests.fakes.gdrive import FakeDrive
from tests.fakes.serve import ServedApp
from tests.provider_flow import replica_states, roundtrip_through_site

ACCOUNT = "sitesync-test@sitesync-test.iam.gserviceaccount.com"
SMALL_CHUNKS = {"chunk_size": 256 * 1024, "multipart_max": 256 * 1024}


@dataclass
class DriveEnv:
    fake: FakeDrive
    url: str
    key_file: Path

    def options(self, folder_id: str, **extra: Any) -> dict[str, Any]:
        return {"credentials": str(self.key_file), "folder_id": folder_id, "endpoint": self.url, **extra}

    def provider(self, folder_id: str, site: str = "drive", **extra: Any) -> Provider:
        return provider_class("gdrive").from_options(site, self.options(folder_id, **extra), {"work": "/"})


def _key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def write_key_file(path: Path, private: str, token_uri: str, email: str = ACCOUNT) -> Path:
    info = {
        "type": "service_account",
        "project_id": "sitesync-test",
        "private_key_id": "k1",
        "private_key": private,
        "client_email": email,
        "client_id": "1234567890",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


@pytest.fixture(scope="module")
def drive_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DriveEnv]:
    fake = FakeDrive()
    private, public = _key_pair()
    fake.add_service_account(ACCOUNT, public)
    with ServedApp(fake.app) as served:
        fake.url = served.url
        key_file = write_key_file(tmp_path_factory.mktemp("gdrive") / "sa.json", private, f"{served.url}/token")
        yield DriveEnv(fake, served.url, key_file)


@pytest.fixture
def drive(drive_server: DriveEnv) -> Iterator[DriveEnv]:
    drive_server.fake.clear_faults()
    drive_server.fake.corrupt_uploads = 0
    yield drive_server
    drive_server.fake.clear_faults()


def new_folder(env: DriveEnv, shared: bool = False) -> str:
    fake = env.fake
    parent = fake.add_shared_drive(f"Studio {os.urandom(3).hex()}") if shared else fake.root
    return fake.make_folder(f"sitesync {os.urandom(3).hex()}", parent)


# ---------------------------------------------------------------------- the contract


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("layout", ["my-drive-small-chunks", "shared-drive"])
def test_contract(drive: DriveEnv, layout: str, check: str) -> None:
    if layout == "shared-drive":
        provider = drive.provider(new_folder(drive, shared=True))
    else:
        provider = drive.provider(new_folder(drive), **SMALL_CHUNKS)
    [result] = run_conformance(provider, "/work", only=[check])
    assert result.ok, f"gdrive ({layout}) fails {check}: {result.detail}"


def test_whole_suite_leaves_no_files_and_uses_resumable_and_multipart(drive: DriveEnv) -> None:
    folder = new_folder(drive)
    provider = drive.provider(folder, **SMALL_CHUNKS)
    before = len(drive.fake.requests)
    results = run_conformance(provider, "/work")
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert list(provider.list("/work")) == []
    seen = drive.fake.requests[before:]
    upload_types = {r["query"].get("uploadType") for r in seen if r["path"].startswith("/upload/")}
    assert {"multipart", "resumable"} <= upload_types
    # cancelling a resumable session answers 499 on Drive: that is its documented success
    failed = [r for r in seen if r["status"] >= 400 and not (r["method"] == "DELETE" and r["status"] == 499)]
    assert not failed, failed
    assert not drive.fake.sessions, "a rejected resumable upload left its session open"


def test_names_map_to_folders_and_files_exactly(drive: DriveEnv) -> None:
    """Dotted folders stay folders, extension-less files stay files, quotes survive the query."""
    folder = new_folder(drive)
    provider = drive.provider(folder)
    for path in ("/a.b/v001.final/README", "/a.b/it's \\ odd/name with 'quotes'.exr"):
        provider.write(path, io.BytesIO(b"x"), 1, lambda: None)
    dotted = drive.fake.find_path(folder, "a.b/v001.final")
    assert dotted is not None and dotted.mime == "application/vnd.google-apps.folder"
    readme = drive.fake.find_path(folder, "a.b/v001.final/README")
    assert readme is not None and readme.mime != "application/vnd.google-apps.folder"
    assert provider.stat("/a.b/it's \\ odd/name with 'quotes'.exr") is not None
    assert provider.stat("/a.b/v001.final") is None, "a folder is not a file"


def test_folder_ids_are_cached_between_transfers(drive: DriveEnv) -> None:
    folder = new_folder(drive)
    provider = drive.provider(folder)
    provider.write("/deep/er/still/one.bin", io.BytesIO(b"1"), 1, lambda: None)
    before = len(drive.fake.requests)
    provider.write("/deep/er/still/two.bin", io.BytesIO(b"2"), 1, lambda: None)
    folder_lookups = [
        r
        for r in drive.fake.requests[before:]
        if "mimeType = 'application/vnd.google-apps.folder'" in r["query"].get("q", "")
    ]
    assert folder_lookups == [], "known folders were looked up again"


def test_duplicate_names_are_reported(drive: DriveEnv) -> None:
    folder = new_folder(drive)
    drive.fake.make_file("twice.exr", folder, b"one")
    drive.fake.make_file("twice.exr", folder, b"two")
    provider = drive.provider(folder)
    with pytest.raises(PermanentStorageError, match=r"holds 2 files named 'twice.exr'.*remove or rename the extras"):
        provider.stat("/twice.exr")
    sub = drive.fake.make_folder("shots", folder)
    drive.fake.make_folder("shots", folder)
    drive.fake.make_file("a.exr", sub, b"a")
    with pytest.raises(PermanentStorageError, match=r"holds 2 folders named 'shots'"):
        provider.stat("/shots/a.exr")


def test_folder_by_path_in_a_shared_drive_and_my_drive(drive: DriveEnv) -> None:
    name = f"Show Drive {os.urandom(3).hex()}"
    drive_id = drive.fake.add_shared_drive(name)
    drive.fake.make_folder("sync", drive_id)
    options = {"credentials": str(drive.key_file), "folder": f"{name}/sync", "endpoint": drive.url}
    provider = provider_class("gdrive").from_options("drive", options, {"work": "/"})
    provider.write("/x/y.bin", io.BytesIO(b"shared"), 6, lambda: None)
    assert drive.fake.find_path(drive_id, "sync/x/y.bin").content == b"shared"  # type: ignore[union-attr]
    my = drive.fake.make_folder(f"mine {os.urandom(2).hex()}", drive.fake.root)
    options["folder"] = f"My Drive/{drive.fake.items[my].name}"
    provider = provider_class("gdrive").from_options("drive", options, {"work": "/"})
    provider.check()
    missing = {**options, "folder": f"{name}/nope"}
    with pytest.raises(SiteUnavailableError, match=r"site drive: Drive folder '.*/nope' does not exist"):
        provider_class("gdrive").from_options("drive", missing, {"work": "/"}).check()


def test_line_breaks_at_the_end_of_small_files_survive(drive: DriveEnv) -> None:
    provider = drive.provider(new_folder(drive))
    for i, data in enumerate((b"ends with CR\r", b"ends with LF\n", b"ends with CRLF\r\n", b"\r\n", b"\n")):
        provider.write(f"/eol{i}", io.BytesIO(data), len(data), lambda: None)
        with provider.open_read(f"/eol{i}") as fh:
            assert fh.read() == data


def test_md5_mismatch_removes_the_damaged_upload(drive: DriveEnv) -> None:
    folder = new_folder(drive)
    provider = drive.provider(folder, **SMALL_CHUNKS)
    for size in (1000, 700_000):  # multipart and resumable
        drive.fake.corrupt_uploads = 1
        with pytest.raises(VerificationError, match="md5"):
            provider.write(f"/bad{size}.bin", io.BytesIO(os.urandom(size)), size, lambda: None)
        assert provider.stat(f"/bad{size}.bin") is None


# ---------------------------------------------------------------------- errors and throttling


def test_bad_credentials_and_missing_folder_make_the_site_unavailable(drive: DriveEnv, tmp_path: Path) -> None:
    folder = new_folder(drive)
    other_private, _ = _key_pair()  # a key Google does not know for this account
    wrong = write_key_file(tmp_path / "wrong.json", other_private, f"{drive.url}/token")
    cases = {
        "refused the credentials": {"credentials": str(wrong)},
        "cannot read the service account key file": {"credentials": str(tmp_path / "nope.json")},
        "not found or not shared with sitesync-test@": {"folder_id": "does-not-exist"},
        "uses {NO_SUCH_VAR}": {"credentials": "{NO_SUCH_VAR}/sa.json"},
    }
    for expected, override in cases.items():
        provider = provider_class("gdrive").from_options("drive", {**drive.options(folder), **override}, {})
        with pytest.raises(SiteUnavailableError) as err:
            provider.check()
        message = str(err.value)
        assert message.startswith("site drive: ") and expected in message, message
        assert "\n" not in message and "PRIVATE KEY" not in message
    (tmp_path / "garbage.json").write_text("-----BEGIN PRIVATE KEY----- not json")
    provider = provider_class("gdrive").from_options(
        "drive", {**drive.options(folder), "credentials": str(tmp_path / "garbage.json")}, {}
    )
    with pytest.raises(SiteUnavailableError, match="is not JSON") as err:
        provider.check()
    assert "BEGIN" not in str(err.value)


def test_unreachable_service_is_unavailable(drive: DriveEnv, unused_port: int) -> None:
    provider = drive.provider(new_folder(drive), endpoint=f"http://127.0.0.1:{unused_port}/")
    with pytest.raises(SiteUnavailableError, match="site drive: cannot reach Google Drive"):
        provider.check()


def test_credentials_from_a_secret_and_platform_paths(drive: DriveEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = new_folder(drive)
    monkeypatch.setenv("SA_DIR", str(drive.key_file.parent))
    monkeypatch.setenv("SA_JSON", drive.key_file.read_text())
    by_placeholder = {"credentials": {"linux": "{SA_DIR}/sa.json", "windows": "C:/x.json", "darwin": "/x.json"}}
    by_secret = {"credentials": None, "credentials_json": "env:SA_JSON"}
    for override in (by_placeholder, by_secret):
        options = {k: v for k, v in {**drive.options(folder), **override}.items() if v is not None}
        provider_class("gdrive").from_options("drive", options, {}).check()


def test_impersonation_sends_the_subject(drive: DriveEnv) -> None:
    provider = drive.provider(new_folder(drive), impersonate="artist@studio.example")
    provider.check()
    assert any(c["sub"] == "artist@studio.example" for c in drive.fake.tokens.values())


def test_throttling_backs_off_honouring_retry_after(drive: DriveEnv) -> None:
    folder = new_folder(drive)
    provider = drive.provider(folder, **SMALL_CHUNKS)
    provider.check()
    drive.fake.inject(403, times=1, reason="rateLimitExceeded", path_prefix="/upload/")
    drive.fake.inject(429, times=2, retry_after=0.5, path_prefix="/upload/")
    before = len(drive.fake.requests)
    data = os.urandom(600_000)
    provider.write("/throttled.bin", io.BytesIO(data), len(data), lambda: None)
    uploads = [r for r in drive.fake.requests[before:] if r["path"].startswith("/upload/")]
    statuses = [r["status"] for r in uploads]
    assert statuses[:3] == [403, 429, 429] and statuses[-1] == 200, statuses
    # the provider waited at least what Retry-After asked before the next try
    assert uploads[2]["t"] - uploads[1]["t"] >= 0.45 and uploads[3]["t"] - uploads[2]["t"] >= 0.45
    with provider.open_read("/throttled.bin") as fh:
        assert fh.read() == data


def test_server_errors_mid_upload_resume_the_session(drive: DriveEnv) -> None:
    provider = drive.provider(new_folder(drive), **SMALL_CHUNKS)
    provider.check()
    data = os.urandom(1_000_000)
    drive.fake.inject(503, times=2, methods=("PUT",), retry_after=0.1)
    before = len(drive.fake.requests)
    provider.write("/resumed.bin", io.BytesIO(data), len(data), lambda: None)
    puts = [r for r in drive.fake.requests[before:] if r["method"] == "PUT"]
    assert [p["status"] for p in puts].count(503) == 2
    with provider.open_read("/resumed.bin") as fh:
        assert fh.read() == data


def test_sustained_throttling_gives_up_without_burning_attempts(drive: DriveEnv) -> None:
    provider = drive.provider(new_folder(drive), max_retry_wait=1.5)
    provider.check()
    drive.fake.inject(429, times=100, retry_after=0.5, path_prefix="/drive/v3/files")
    with pytest.raises(SiteUnavailableError, match="site drive: Google Drive keeps asking to slow down"):
        provider.stat("/x.bin")


# ---------------------------------------------------------------------- the engine


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_engine_roundtrip_through_google_drive(drive: DriveEnv, tmp_path: Path, db_url: str, home: Path) -> None:
    studio = make_studio(tmp_path, db_url, home)
    try:
        folder = new_folder(drive, shared=True)
        define_site(studio.client, "gdrive", "gdrive", ["work=/projects"], drive.options(folder, **SMALL_CHUNKS))
        result = roundtrip_through_site(studio, "gdrive")
        stored = drive.fake.find_path(folder, "projects/show/seq01/sh010.v1/publish/plateMain/v001/exr")
        assert stored is not None
        names = {i.name: i.content for i in drive.fake.children(stored.id)}
        assert names == result["contents"]
        site = studio.client.site("gdrive")
        assert "PRIVATE" not in json.dumps(site)
    finally:
        studio.client.close()


def test_throttled_drive_does_not_stop_other_sites(
    drive: DriveEnv, tmp_path: Path, sqlite_url: str, home: Path
) -> None:
    studio = make_studio(tmp_path, sqlite_url, home)
    try:
        c = studio.client
        folder = new_folder(drive)
        define_site(c, "gdrive", "gdrive", ["work=/"], drive.options(folder, max_retry_wait=1.0))
        c.add_site("backup", "local_drive", [f"work={tmp_path / 'backup'}"], {"create_roots": True})
        c.settings_set("remote_site", "gdrive", project="show")
        c.settings_set("always_accessible_on", "backup", project="show")
        # the site answers its check and folder lookups, but every upload is throttled
        drive.fake.inject(429, times=10_000, retry_after=0.5, path_prefix="/upload/")
        rep = studio.publish([studio.write(f"f{i}.bin", os.urandom(1000)) for i in range(3)])
        report = studio.sync()
        states = replica_states(studio, rep)
        assert states["backup"] == ["present"] * 3, "the throttled Drive held up another site"
        assert states["gdrive"] == ["queued"] * 3 and report.failed_attempts == 0
        detail = c.status(representation=rep)
        assert all(r["attempts"] == 0 for f in detail["files"] for r in f["replicas"] if r["site"] == "gdrive")
        events = [e for e in c.store.events(limit=1000) if e.kind == "site_unavailable"]
        assert any("slow down" in (e.message or "") for e in events)

        drive.fake.clear_faults()
        report = studio.sync()
        assert report.transferred == 3
        assert replica_states(studio, rep) == {
            SITE_ID: ["present"] * 3,
            "backup": ["present"] * 3,
            "gdrive": ["present"] * 3,
        }
    finally:
        studio.client.close()


def test_the_fake_refuses_what_drive_refuses(drive: DriveEnv) -> None:
    """The fake must not let a wrong request pass, or the tests above would prove nothing."""
    from googleapiclient.errors import HttpError

    folder = new_folder(drive, shared=True)
    provider = drive.provider(folder)
    provider.check()
    files = provider.api.service().files()
    http = provider.api.http()
    wrong = {
        "unescaped quote": files.list(q="name = 'it's' and trashed = false"),
        "unknown field in q": files.list(q="colour = 'red'"),
        "unknown field selection": files.list(q="trashed = false", fields="files(id, colour)"),
        "shared drive without supportsAllDrives": files.list(
            corpora="drive", driveId=drive.fake.items[folder].drive_id
        ),
        "shared-drive file without supportsAllDrives": files.get(fileId=folder),
    }
    for label, request in wrong.items():
        with pytest.raises(HttpError) as err:
            request.execute(num_retries=0)
            pytest.fail(f"the fake accepted: {label}")
        assert err.value.resp.status in (400, 403, 404), label
    resp, _ = http.request(f"{drive.url}/drive/v3/files?q=trashed%20%3D%20false&colour=red")
    assert resp.status == 400, "an unknown query parameter must be refused"
    resp, _ = http.request(f"{drive.url}/upload/drive/v3/files?uploadType=chunky", "POST", body=b"x")
    assert resp.status == 400, "an unknown upload protocol must be refused"
    import httplib2

    resp, _ = httplib2.Http().request(f"{drive.url}/drive/v3/files")
    assert resp.status == 401, "a request without a token must be refused"


def test_usage_is_the_accounts_storage_quota(drive: DriveEnv) -> None:
    folder = new_folder(drive)
    provider = drive.provider(folder)
    provider.write("/work/q.bin", io.BytesIO(b"x" * 1000), 1000, lambda: None)
    usage = provider.usage()
    used = sum(len(i.content or b"") for i in drive.fake.items.values() if i.drive_id is None)
    assert usage is not None and usage.total == drive.fake.quota_limit
    assert usage.free == drive.fake.quota_limit - used
    assert any(
        r["path"] == "/drive/v3/about" and r["query"].get("fields") == "storageQuota" for r in drive.fake.requests
    )
    drive.fake.quota_limit = None  # unlimited storage: no limit in the answer
    try:
        unlimited = provider.usage()
    finally:
        drive.fake.quota_limit = 15 * 1024**3
    assert unlimited is not None and unlimited.total is None and unlimited.free is None
    # a shared drive's space is the organisation's pool, which the account cannot see
    assert drive.provider(new_folder(drive, shared=True)).usage() is None
