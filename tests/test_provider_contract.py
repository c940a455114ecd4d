"""The shared provider contract suite (``sitesync.providers.conformance``) against every built-in
provider (S3 against moto and ``rclone serve s3``, SFTP against OpenSSH's sshd, all real servers on
loopback), plus the entry-point discovery that loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitesync.errors import ProviderNotAvailableError
from sitesync.providers.base import Provider
from sitesync.providers.conformance import CHECKS, run_conformance
from sitesync.providers.registry import provider_class, provider_names
from tests.remote_servers import new_bucket, new_remote_folder


def make_local_drive(tmp_path: Path, request: pytest.FixtureRequest | None = None) -> tuple[Provider, str]:
    root = tmp_path / "site"
    root.mkdir()
    cls = provider_class("local_drive")
    return cls.from_options("contract", {}, {"work": str(root)}), str(root)


def make_memory(tmp_path: Path, request: pytest.FixtureRequest | None = None) -> tuple[Provider, str]:
    cls = provider_class("memory")
    return cls.from_options("contract", {"namespace": "contract"}, {"work": "/mem"}), "/mem"


def _make_s3(server_fixture: str, request: pytest.FixtureRequest) -> tuple[Provider, str]:
    server = request.getfixturevalue(server_fixture)
    options = server.options(new_bucket(server), prefix="studio/projects")
    provider = provider_class("s3").from_options("contract", options, {"work": "/work"})
    request.addfinalizer(provider.close)
    return provider, "/work"


def make_s3_moto(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Provider, str]:
    return _make_s3("moto_s3", request)


def make_s3_rclone(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Provider, str]:
    return _make_s3("rclone_s3", request)


def make_sftp(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Provider, str]:
    server = request.getfixturevalue("sshd")
    folder = new_remote_folder(server)
    provider = provider_class("sftp").from_options("contract", server.options(base_path=str(folder)), {"work": "/work"})
    request.addfinalizer(provider.close)
    return provider, "/work"


FACTORIES = {
    "local_drive": make_local_drive,
    "memory": make_memory,
    "s3_moto": make_s3_moto,
    "s3_rclone": make_s3_rclone,
    "sftp": make_sftp,
}


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("provider_name", sorted(FACTORIES))
def test_contract(provider_name: str, check: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    provider, base = FACTORIES[provider_name](tmp_path, request)
    [result] = run_conformance(provider, base, only=[check])
    if result.skipped:
        pytest.skip(result.detail)
    assert result.ok, f"{provider_name} fails {check}: {result.detail}"


def test_conformance_cleans_up_after_itself(tmp_path: Path) -> None:
    provider, base = make_local_drive(tmp_path)
    results = run_conformance(provider, base)
    assert all(r.ok for r in results), [r for r in results if not r.ok]
    assert list(provider.list(base)) == []
    assert [p.name for p in Path(base).iterdir()] == [], "scratch folder left behind"


def test_broken_provider_is_caught(tmp_path: Path) -> None:
    """The suite must fail a provider that writes straight to the final name (non-atomic)."""
    from sitesync.providers.local_drive import LocalDriveProvider

    class NonAtomic(LocalDriveProvider):
        def write(self, path, stream, size, commit_check):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                while chunk := stream.read(65536):
                    fh.write(chunk)
            commit_check()
            return self.stat(path)

    root = tmp_path / "broken"
    root.mkdir()
    provider = NonAtomic.from_options("broken", {}, {"work": str(root)})
    results = {r.name: r for r in run_conformance(provider, str(root))}
    assert not results["atomic_visibility"].ok
    assert not results["commit_check_rejects"].ok
    assert results["write_read_roundtrip"].ok


def test_entry_points_list_builtins() -> None:
    assert {"local_drive", "s3", "sftp", "gdrive", "rclone", "dropbox"} <= set(provider_names())
    with pytest.raises(ProviderNotAvailableError, match="unknown provider 'nope'"):
        provider_class("nope")
