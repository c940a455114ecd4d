"""Fixtures for the real remote storage servers (see ``tests/servers.py``): started once per test
session on loopback when a test first asks for them, stopped at the end. Tests get fresh buckets
and folders so they never see each other's files."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import (
    RestrictedS3,
    S3Server,
    SshServer,
    moto_restricted_server,
    moto_server,
    rclone_s3_server,
    ssh_server,
)

_counter = itertools.count()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    with moto_server() as server:
        yield server


@pytest.fixture(scope="session")
def moto_s3_restricted() -> Iterator[RestrictedS3]:
    """moto checking credentials and IAM policies (wrong keys, permission denied on one object)."""
    with moto_restricted_server() as server:
        yield server


@pytest.fixture(scope="session")
def rclone_s3() -> Iterator[S3Server]:
    with rclone_s3_server() as server:
        yield server


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


def new_bucket(server: S3Server) -> str:
    name = f"t{os.getpid()}-{next(_counter)}-{secrets.token_hex(3)}"
    server.create_bucket(name)
    return name


def new_remote_folder(server: SshServer) -> Path:
    """A fresh folder on the SFTP server that its login user owns."""
    folder = server.base / f"t{next(_counter)}-{secrets.token_hex(3)}"
    folder.mkdir()
    if os.geteuid() == 0:
        stat = server.base.stat()
        os.chown(folder, stat.st_uid, stat.st_gid)
    return folder
