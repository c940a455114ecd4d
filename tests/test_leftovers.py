"""Leftovers of interrupted writes on remote sites: old temporary files on SFTP, unfinished S3
multipart uploads, and what fsck removes and reports. (A write cut off by a killed sshd is cleaned
after the next write: tests/test_site_backoff.py.)"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

from sitesync.providers.registry import provider_class
from sitesync.providers.s3 import S3Provider
from sitesync.providers.sftp import SftpProvider
from tests.conftest import Studio
from tests.remote_servers import new_bucket, new_remote_folder
from tests.servers import S3Server, SshServer

HOURS = 3600


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_sftp_first_write_to_a_folder_removes_old_temporary_files_only(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    provider = provider_class("sftp").from_options(
        "vendor", sshd.options(base_path=str(folder), leftover_age=HOURS), {"work": "/w"}
    )
    assert isinstance(provider, SftpProvider)
    shot = folder / "w" / "shot"
    (shot / "sub").mkdir(parents=True)
    if os.geteuid() == 0:  # the SFTP login user owns its folders
        st = folder.stat()
        for p in (folder / "w", shot, shot / "sub"):
            os.chown(p, st.st_uid, st.st_gid)
    old = shot / ".sitesync-a.exr.0badf00d.part"
    old.write_bytes(b"left by a dropped connection")
    age(old, 2 * HOURS)
    young = shot / ".sitesync-b.exr.1234abcd.part"  # another writer, busy right now
    young.write_bytes(b"being written")
    deep = shot / "sub" / ".sitesync-c.exr.00000000.part"
    deep.write_bytes(b"old, in another folder")
    age(deep, 2 * HOURS)
    try:
        provider.write("/w/shot/new.exr", io.BytesIO(b"n"), 1, lambda: None)
        assert not old.exists() and young.exists() and deep.exists()
        assert provider.sweep_leftovers("/w") == [provider.remote("/w/shot/sub/.sitesync-c.exr.00000000.part")]
        assert young.exists() and not deep.exists()
    finally:
        provider.close()


def test_s3_unfinished_uploads_are_aborted_but_never_a_live_one(moto_s3: S3Server) -> None:
    bucket = new_bucket(moto_s3)
    boto = moto_s3.boto_client()
    stale = boto.create_multipart_upload(Bucket=bucket, Key="w/shot/a.exr")["UploadId"]
    provider = provider_class("s3").from_options("cloud", moto_s3.options(bucket, leftover_age=0), {"work": "/w"})
    assert isinstance(provider, S3Provider)
    try:
        provider._active.add("live-upload-of-this-provider")
        provider.write("/w/shot/b.exr", io.BytesIO(b"b"), 1, lambda: None)
        assert boto.list_multipart_uploads(Bucket=bucket).get("Uploads") is None, "the unfinished upload stayed"
        other = boto.create_multipart_upload(Bucket=bucket, Key="w/elsewhere/c.exr")["UploadId"]
        assert provider.sweep_leftovers("/w") == ["w/elsewhere/c.exr (unfinished upload)"]
        assert other != stale and boto.list_multipart_uploads(Bucket=bucket).get("Uploads") is None
    finally:
        provider.close()


def test_fsck_removes_and_reports_leftovers(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    rep = studio.publish([studio.write("a.bin", b"a")])
    studio.sync()
    final = next(studio.local_root.rglob("a.bin"))
    old = final.parent / ".sitesync-x.bin.0badf00d.part"
    old.write_bytes(b"partial")
    age(old, 7 * HOURS)
    young = final.parent / ".sitesync-y.bin.1234abcd.part"
    young.write_bytes(b"busy")
    result = studio.cli("fsck", "local", "--json", check=True)
    data = json.loads(result.stdout)
    assert data["leftovers_removed"] == 1 and data["leftovers"] == [str(old)]
    assert not old.exists() and young.exists()
    text = studio.cli("fsck", "local", check=True).stdout
    assert "leftovers" not in text  # nothing left to remove the second time
    assert rep
