"""The ``rclone`` provider against real rclone remotes: a local path, and ``rclone serve sftp`` /
``serve s3`` / ``serve webdav`` started on free loopback ports for this module (real protocols,
real rclone backends on the client side)."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sitesync.errors import SiteUnavailableError, VerificationError
from sitesync.providers.base import Provider
from sitesync.providers.conformance import CHECKS, run_conformance
from sitesync.providers.rclone.config import RcloneConfig
from sitesync.providers.rclone.daemon import find_rclone
from sitesync.providers.registry import provider_class
from tests.conftest import define_site, make_studio
from tests.provider_flow import roundtrip_through_site
from tests.servers import rclone_serve

RCLONE = find_rclone(RcloneConfig(type="local"), "test")
SMALL = {"stream_threshold": 256 * 1024}  # so the suite's bigger files take the rcat path


@dataclass
class Served:
    """An rclone server and how a site reaches it."""

    kind: str
    directory: Path
    options: dict[str, Any]  # the site's provider options
    root: str  # where the root lives inside the remote
    proc: subprocess.Popen[bytes] | None = None

    def provider(self, site: str = "rc", **extra: Any) -> Provider:
        return provider_class("rclone").from_options(site, {**self.options, **extra}, {"work": self.root})


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    base = tmp_path_factory.mktemp("rclone")
    cache = base / "cache"
    out: dict[str, Served] = {}
    procs = []
    env = pytest.MonkeyPatch()
    env.setenv("SITESYNC_TEST_SFTP_PASS", "s3cr3t-sftp")  # the sftp site's password comes from env:
    try:
        local = base / "local"
        local.mkdir()
        out["local"] = Served("local", local, {"type": "local"}, str(local))

        d = base / "sftp"
        d.mkdir()
        proc, addr = rclone_serve("sftp", d, cache, ["--user", "artist", "--pass", "s3cr3t-sftp"])
        procs.append(proc)
        host, port = addr.split(":")
        options = {
            "type": "sftp",
            "options": {"host": host, "port": int(port), "user": "artist", "shell_type": "none"},
            "secrets": {"pass": "env:SITESYNC_TEST_SFTP_PASS"},
        }
        out["sftp"] = Served("sftp", d, options, "/show-root", proc)

        d = base / "s3"
        (d / "bucket").mkdir(parents=True)
        proc, addr = rclone_serve("s3", d, cache, ["--auth-key", "AKIDTEST,s3cr3t-s3-key"])
        procs.append(proc)
        options = {
            "type": "s3",
            "options": {"provider": "Rclone", "endpoint": f"http://{addr}", "access_key_id": "AKIDTEST"},
            "secrets": {"secret_access_key": "s3cr3t-s3-key"},
        }
        out["s3"] = Served("s3", d, options, "bucket/projects", proc)

        d = base / "webdav"
        d.mkdir()
        proc, addr = rclone_serve("webdav", d, cache, ["--user", "artist", "--pass", "s3cr3t-dav"])
        procs.append(proc)
        options = {
            "type": "webdav",
            "options": {"url": f"http://{addr}", "vendor": "other", "user": "artist"},
            "secrets": {"pass": "s3cr3t-dav"},
        }
        out["webdav"] = Served("webdav", d, options, "/dav-root", proc)
        yield out
    finally:
        env.undo()
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


REMOTES = ["local", "sftp", "s3", "webdav"]


@pytest.fixture(scope="module")
def providers(servers: dict[str, Served]) -> Iterator[dict[str, Provider]]:
    made = {name: served.provider(**SMALL) for name, served in servers.items()}
    yield made
    for p in made.values():
        p.close()


# ---------------------------------------------------------------------- the contract


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("remote", REMOTES)
def test_contract(providers: dict[str, Provider], servers: dict[str, Served], remote: str, check: str) -> None:
    [result] = run_conformance(providers[remote], servers[remote].root, only=[check])
    assert result.ok, f"rclone ({remote}) fails {check}: {result.detail}"


def test_files_land_where_the_root_says(providers: dict[str, Provider], servers: dict[str, Served]) -> None:
    for remote in ("sftp", "s3", "webdav"):
        served = servers[remote]
        providers[remote].write(f"{served.root}/a b/ü's.exr", io.BytesIO(b"data"), 4, lambda: None)
        on_disk = served.directory / served.root.lstrip("/") / "a b" / "ü's.exr"
        assert on_disk.read_bytes() == b"data", remote
        assert not [p.name for p in on_disk.parent.iterdir() if p.name.startswith(".sitesync-")]


def test_rejected_large_write_leaves_nothing(providers: dict[str, Provider], servers: dict[str, Served]) -> None:
    served = servers["sftp"]
    path = f"{served.root}/rejected/big.bin"

    def refuse() -> None:
        raise VerificationError("refused")

    with pytest.raises(VerificationError):
        providers["sftp"].write(path, io.BytesIO(os.urandom(600_000)), 600_000, refuse)
    folder = served.directory / "show-root" / "rejected"
    assert not folder.exists() or list(folder.iterdir()) == []


def test_streamed_upload_reports_progress_while_sending(
    providers: dict[str, Provider], servers: dict[str, Served]
) -> None:
    """Bytes are counted as rclone consumes them, not all at the end."""
    from sitesync.hashing import HashingReader

    seen: list[int] = []
    data = os.urandom(4 * 1024 * 1024)
    reader = HashingReader(io.BytesIO(data), on_bytes=lambda n: seen.append(n))
    providers["s3"].write(f"{servers['s3'].root}/progress.bin", reader, len(data), lambda: None)
    assert len(seen) >= 4 and sum(seen) == len(data)


# ---------------------------------------------------------------------- configuration and errors


def test_named_remote_from_a_config_file(servers: dict[str, Served], tmp_path: Path) -> None:
    served = servers["webdav"]
    url = served.options["options"]["url"]
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[studio_dav]\ntype = webdav\nurl = {url}\nvendor = other\nuser = artist\n")
    options = {"remote": "studio_dav", "config_file": str(conf), "secrets": {"pass": "s3cr3t-dav"}}
    provider = provider_class("rclone").from_options("dav", options, {"work": "/named"})
    try:
        [result] = run_conformance(provider, "/named", only=["write_read_roundtrip"])
        assert result.ok, result.detail
    finally:
        provider.close()


def test_secrets_never_reach_a_command_line(servers: dict[str, Served]) -> None:
    provider = servers["webdav"].provider("dav")
    try:
        provider.check()
        pid = provider.daemon._proc.pid  # type: ignore[attr-defined,union-attr]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode()
        assert "s3cr3t-dav" not in cmdline and "s3cr3t-dav" not in environ, "the password must travel obscured"
        assert "RCLONE_CONFIG_SITESYNC_PASS=" in environ and "RCLONE_RC_PASS=" in environ
        assert "--rc-pass" not in cmdline and "--rc-user" not in cmdline
    finally:
        provider.close()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_password", "cannot use the rclone remote"),
        ("unreachable", "cannot use the rclone remote"),
        ("missing_env", "environment variable NOPE_NOT_SET"),
        ("bad_executable", "rclone executable /nonexistent/rclone is missing"),
    ],
)
def test_site_errors_are_one_line_naming_the_site(servers: dict[str, Served], case: str, expected: str) -> None:
    served = servers["sftp"]
    options: dict[str, Any] = {**served.options, "options": dict(served.options["options"])}
    if case == "wrong_password":
        options["secrets"] = {"pass": "WrongPassw0rd"}
    elif case == "unreachable":
        options["options"]["port"] = str(_closed_port())
    elif case == "missing_env":
        options["secrets"] = {"pass": "env:NOPE_NOT_SET"}
    else:
        options["rclone"] = "/nonexistent/rclone"
    provider = provider_class("rclone").from_options("vendor-sftp", options, {"work": served.root})
    try:
        with pytest.raises(SiteUnavailableError) as err:
            provider.check()
    finally:
        provider.close()
    message = str(err.value)
    assert message.startswith("site vendor-sftp: ") and expected in message, message
    assert "\n" not in message and "WrongPassw0rd" not in message


def test_options_are_validated() -> None:
    cls = provider_class("rclone")
    for bad, match in [
        ({}, "exactly one of remote"),
        ({"type": "s3", "remote": "x"}, "exactly one of remote"),
        ({"type": "s3", "options": {"Bad-Key": "1"}}, "invalid rclone option name"),
        ({"type": "s3", "options": {"region": "a"}, "secrets": {"region": "b"}}, "both in options and in secrets"),
        ({"type": "sftp", "options": {"pass": "plain"}}, "'pass' is a secret: give it under secrets"),
        ({"remote": "my-remote", "secrets": {"pass": "x"}}, "letters, digits and '_'"),
    ]:
        with pytest.raises(ValueError, match=match):
            cls.from_options("x", bad, {})


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_daemon_restarts_after_it_died(servers: dict[str, Served]) -> None:
    provider = servers["local"].provider("loc")
    try:
        root = servers["local"].root
        provider.write(f"{root}/restart/a.bin", io.BytesIO(b"a"), 1, lambda: None)
        provider.daemon._proc.kill()  # type: ignore[attr-defined,union-attr]
        provider.daemon._proc.wait()  # type: ignore[attr-defined,union-attr]
        assert provider.stat(f"{root}/restart/a.bin") is not None
    finally:
        provider.close()


# ---------------------------------------------------------------------- the engine


@pytest.mark.parametrize("remote", ["sftp", "s3", "webdav"])
def test_engine_roundtrip(servers: dict[str, Served], remote: str, tmp_path: Path, sqlite_url: str, home: Path) -> None:
    served = servers[remote]
    studio = make_studio(tmp_path, sqlite_url, home)
    try:
        define_site(studio.client, "vendor", "rclone", [f"work={served.root}/e2e"], {**served.options, **SMALL})
        roundtrip_through_site(studio, "vendor")
        stored = list((served.directory / served.root.lstrip("/") / "e2e").rglob("*"))
        assert any(p.name == "plate.1001.exr" for p in stored)
        assert not [p for p in stored if p.name.startswith(".sitesync-")]
    finally:
        studio.client.close()


def test_engine_roundtrip_on_postgresql(servers: dict[str, Served], tmp_path: Path, pg_url: str, home: Path) -> None:
    served = servers["sftp"]
    studio = make_studio(tmp_path, pg_url, home)
    try:
        define_site(studio.client, "vendor", "rclone", [f"work={served.root}/pg"], served.options)
        roundtrip_through_site(studio, "vendor")
    finally:
        studio.client.close()
