"""The ``s3`` provider's own behaviour against real servers (moto with and without IAM checks,
``rclone serve s3``): permission denied on one object, refused credentials, multipart uploads
completed only after the commit check and aborted otherwise, option validation and secrets."""

from __future__ import annotations

import io
import os

import pytest

from sitesync.errors import (
    InvalidSettingError,
    PermanentStorageError,
    SiteUnavailableError,
    TransientStorageError,
    VerificationError,
)
from sitesync.providers.registry import provider_class
from sitesync.providers.s3 import S3Provider
from tests.conftest import Studio, define_site
from tests.remote_servers import new_bucket
from tests.servers import RestrictedS3, S3Server

MiB = 1024 * 1024


def s3(server: S3Server, bucket: str, root: str = "/projects", **options: object) -> S3Provider:
    provider = provider_class("s3").from_options("vault", server.options(bucket, **options), {"work": root})
    assert isinstance(provider, S3Provider)
    return provider


def refuse() -> None:
    raise VerificationError("refused by the test")


def test_permission_denied_on_one_object_is_that_files_error(moto_s3_restricted: RestrictedS3) -> None:
    r = moto_s3_restricted
    provider = s3(r.server, r.bucket, "/open", prefix="studio")
    provider.check()  # listing is allowed: the site is usable
    provider.write("/open/ok/a.bin", io.BytesIO(b"fine"), 4, lambda: None)
    assert provider.stat("/open/ok/a.bin").size == 4
    with pytest.raises(
        PermanentStorageError, match=r"^site vault: write /open/sh010/locked/b.bin: access denied; check"
    ):
        provider.write("/open/sh010/locked/b.bin", io.BytesIO(b"nope"), 4, lambda: None)
    with pytest.raises(PermanentStorageError, match="access denied"):
        provider.stat("/elsewhere/c.bin")


@pytest.mark.parametrize(
    ("access_key", "secret", "code"),
    [
        ("AKIANOSUCHKEY0000000", "whatever-secret", "InvalidAccessKeyId"),
        (None, "wrong-secret", "SignatureDoesNotMatch"),
    ],
)
def test_refused_credentials_make_the_site_unavailable(
    moto_s3_restricted: RestrictedS3, access_key: str | None, secret: str, code: str
) -> None:
    r = moto_s3_restricted
    provider = s3(r.server, r.bucket, access_key_id=access_key or r.server.access_key, secret_access_key=secret)
    with pytest.raises(SiteUnavailableError, match=f"refused the credentials \\({code}\\)") as info:
        provider.check()
    assert secret not in str(info.value) and info.value.site == "vault"
    with pytest.raises(SiteUnavailableError):  # a transfer meets the same error: the site, not the file
        provider.write("/projects/x.bin", io.BytesIO(b"x"), 1, lambda: None)


def test_multipart_upload_completes_only_after_the_commit_check(moto_s3: S3Server) -> None:
    bucket = new_bucket(moto_s3)
    provider = s3(moto_s3, bucket, multipart_threshold=5 * MiB, multipart_part_size=5 * MiB, max_concurrency=2)
    data = os.urandom(12 * MiB + 1)
    boto = moto_s3.boto_client()
    seen_during_check: list[object] = []

    def check() -> None:
        seen_during_check.append(provider.stat("/projects/big.bin"))
        seen_during_check.append(len(boto.list_multipart_uploads(Bucket=bucket).get("Uploads", [])))

    entry = provider.write("/projects/big.bin", io.BytesIO(data), len(data), check)
    assert seen_during_check == [None, 1], "the object was visible before the commit check, or no multipart upload"
    assert entry.size == len(data) and entry.hashes == {}, "an ETag must never be offered as a content hash"
    head = boto.head_object(Bucket=bucket, Key="projects/big.bin")
    assert head["ETag"].strip('"').endswith("-3"), "12 MiB with 5 MiB parts must be a 3-part upload"
    with provider.open_read("/projects/big.bin") as fh:  # ranged, parallel download
        assert fh.read() == data

    with pytest.raises(VerificationError):
        provider.write("/projects/refused.bin", io.BytesIO(data), len(data), refuse)
    assert provider.stat("/projects/refused.bin") is None
    assert boto.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == [], "a refused upload must be aborted"


@pytest.mark.parametrize("server_kind", ["moto_s3", "rclone_s3"])
def test_object_replaced_during_a_ranged_read_fails_the_read(server_kind: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(server_kind)
    bucket = new_bucket(server)
    provider = s3(server, bucket, multipart_part_size=5 * MiB, max_concurrency=2)
    provider.write("/projects/plate.exr", io.BytesIO(os.urandom(21 * MiB)), 21 * MiB, lambda: None)
    with provider.open_read("/projects/plate.exr") as fh:
        first = fh.read(MiB)
        provider.write("/projects/plate.exr", io.BytesIO(os.urandom(21 * MiB)), 21 * MiB, lambda: None)
        with pytest.raises(TransientStorageError, match="the object changed while it was read"):
            while fh.read(MiB):
                pass
    assert len(first) == MiB


def test_source_longer_than_announced_fails_the_check(rclone_s3: S3Server) -> None:
    bucket = new_bucket(rclone_s3)
    provider = s3(rclone_s3, bucket)
    consumed: list[int] = []
    stream = io.BytesIO(b"0123456789")

    def check() -> None:
        consumed.append(stream.tell())
        raise VerificationError("size differs")

    with pytest.raises(VerificationError):
        provider.write("/projects/short.bin", stream, 5, check)
    assert consumed == [6], "the provider must read past the announced size so the check can see it"
    assert provider.stat("/projects/short.bin") is None


def test_options_are_validated_and_secrets_masked(sqlite_studio: Studio, moto_s3: S3Server, monkeypatch) -> None:
    c = sqlite_studio.client
    with pytest.raises(InvalidSettingError, match="set both access_key_id and secret_access_key"):
        c.add_site("half", "s3", ["work=/p"], {"bucket": "some-bucket", "access_key_id": "AKIA"})
    with pytest.raises(InvalidSettingError, match="multipart_part_size"):
        c.add_site("tiny", "s3", ["work=/p"], {"bucket": "some-bucket", "multipart_part_size": 1024})
    with pytest.raises(InvalidSettingError, match="bucket"):
        c.add_site("nobucket", "s3", ["work=/p"], {"prefix": "x"})
    with pytest.raises(InvalidSettingError, match="addressing_style"):
        c.add_site("style", "s3", ["work=/p"], {"bucket": "some-bucket", "addressing_style": "sideways"})

    bucket = new_bucket(moto_s3)
    monkeypatch.setenv("SITESYNC_TEST_S3_SECRET", moto_s3.secret_key)
    options = moto_s3.options(bucket, secret_access_key="env:SITESYNC_TEST_S3_SECRET")
    define_site(c, "vault", "s3", ["work=projects"], options)
    shown = c.site("vault")
    # the secret is a reference, so it is this machine's option; the literal key id is shared
    assert shown["local_options"]["secret_access_key"] == "********" and shown["options"]["access_key_id"] == "********"
    assert shown["roots"] == {"work": {"any": "projects"}}, "an object-key root must not become a local path"
    result = c.site_test("vault", only=["reachable", "write_read_roundtrip"])
    assert result["ok"], result["checks"]
    monkeypatch.delenv("SITESYNC_TEST_S3_SECRET")
    failed = c.site_test("vault", only=["reachable"])
    assert not failed["ok"] and "SITESYNC_TEST_S3_SECRET, which is not set" in failed["checks"][0]["detail"]


def test_engine_fails_only_the_denied_file(sqlite_studio: Studio, moto_s3_restricted: RestrictedS3) -> None:
    studio, c, r = sqlite_studio, sqlite_studio.client, moto_s3_restricted
    define_site(c, "vault", "s3", ["work=/open"], r.server.options(r.bucket, prefix="studio"))
    c.settings_set("remote_site", "vault", project="show")
    c.settings_set("retry_count", 2, project="show")
    fine = studio.publish([studio.write("fine.bin", b"fine")], product="fine")
    locked = studio.publish([studio.write("locked.bin", b"locked")], product="locked")
    report = studio.sync()
    assert report.transferred == 1 and report.failed_attempts == 2
    [fine_remote] = [r for r in c.status(representation=fine)["files"][0]["replicas"] if r["site"] == "vault"]
    [locked_remote] = [r for r in c.status(representation=locked)["files"][0]["replicas"] if r["site"] == "vault"]
    assert fine_remote["status"] == "present"
    assert locked_remote["status"] == "failed" and locked_remote["attempts"] == 2
    assert locked_remote["last_error"].startswith("site vault: write /open/show/")
    assert "access denied" in locked_remote["last_error"]
