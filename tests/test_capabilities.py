"""Optional provider capabilities: detected from the methods a class defines, switched off per site
with the ``disable_capabilities`` option (validated, in the generated reference), and a clear
fallback to the required contract: a transfer that may not (or cannot) use ``write_local`` streams
through ``write``, a site whose usage is off reports no space."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sitesync.errors import InvalidSettingError, NotSupportedError
from sitesync.hashing import hash_file
from sitesync.providers import registry
from sitesync.providers.base import Capability, Provider, detect_capabilities
from sitesync.providers.conformance import run_conformance
from sitesync.providers.local_drive import LocalDriveProvider
from sitesync.providers.registry import provider_class
from tests.conftest import Studio


def test_builtin_capabilities_are_detected_from_their_methods() -> None:
    assert detect_capabilities(LocalDriveProvider) == set(Capability)
    assert provider_class("memory").supported_capabilities() == frozenset()
    assert provider_class("faulty").supported_capabilities() == frozenset(), "faulty must never be bypassed"
    for name in ("s3", "sftp", "rclone"):
        assert provider_class(name).supported_capabilities() == frozenset(), name
    for name in ("gdrive", "dropbox"):
        assert provider_class(name).supported_capabilities() == {Capability.USAGE}, name


def test_a_subclass_that_changes_reads_loses_local_path() -> None:
    class Reads(LocalDriveProvider):
        def open_read(self, path: str) -> Any:
            return super().open_read(path)

    assert Capability.LOCAL_PATH not in Reads.supported_capabilities(), "local_path would bypass its open_read"
    assert Capability.LOCAL_COPY in Reads.supported_capabilities()


def test_declaring_capabilities_by_hand_is_refused() -> None:
    with pytest.raises(TypeError, match="detected from the methods a provider defines"):

        class Declares(LocalDriveProvider):
            capabilities = frozenset({Capability.LOCAL_COPY})


def test_disable_capabilities_is_validated(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    with pytest.raises(InvalidSettingError, match="disable_capabilities"):
        c.add_site("vault", "local_drive", ["work=/tmp/v"], {"disable_capabilities": ["teleport"]})
    provider = LocalDriveProvider.from_options("v", {"disable_capabilities": ["local_copy", "usage"]}, {"work": "/v"})
    assert provider.capabilities == {Capability.LOCAL_PATH, Capability.STAGED_WRITE}
    assert LocalDriveProvider.supported_capabilities() == set(Capability)


class _Counting(LocalDriveProvider):
    """local_drive that counts which write path each transfer took (both defined here, so the class
    keeps local_copy)."""

    name = "counting"
    calls: list[str] = []

    def write(self, path: str, stream: Any, size: int, commit_check: Any) -> Any:
        if path.endswith(".exr"):  # not the site's marker
            self.calls.append("write")
        return super().write(path, stream, size, commit_check)

    def write_local(self, path: str, source: str, size: int, verify: Any, on_bytes: Any = None, **kw: Any) -> Any:
        self.calls.append("write_local")
        return super().write_local(path, source, size, verify, on_bytes)


class _CannotAfterAll(_Counting):
    name = "cannot_after_all"

    def write_local(self, path: str, source: str, size: int, verify: Any, on_bytes: Any = None, **kw: Any) -> Any:
        self.calls.append("write_local")
        raise NotSupportedError(f"{path}: not from this source", site=self.site)


def _transfer(studio: Studio, cls: type[Provider], options: dict[str, Any]) -> tuple[list[str], Path, list[Path]]:
    cls.calls = []  # type: ignore[attr-defined]
    registry.register(cls.name, cls)
    try:
        vault = studio.root / "vault"
        studio.client.add_site("vault", cls.name, [f"work={vault}"], {"create_roots": True, **options})
        frames = [studio.studio_file(f"show/sh090/f.{i}.exr", size=200_000 + i) for i in range(3)]
        rep = studio.publish(frames, site="studio", product="plate", name="exr")
        studio.client.download(rep, site="vault")
        report = studio.sync()
    finally:
        registry.unregister(cls.name)
    assert report.transferred == 3
    return cls.calls, vault, frames  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cls", "options", "expected"),
    [
        (_Counting, {}, ["write_local"] * 3),
        (_Counting, {"disable_capabilities": ["local_copy"]}, ["write"] * 3),
        (_CannotAfterAll, {}, ["write_local", "write"] * 3),
    ],
    ids=["kernel-copy", "switched-off", "not-supported-falls-back"],
)
def test_transfers_fall_back_to_streaming(
    sqlite_studio: Studio, cls: type[Provider], options: dict[str, Any], expected: list[str]
) -> None:
    calls, vault, frames = _transfer(sqlite_studio, cls, options)
    assert sorted(calls) == sorted(expected)
    for frame in frames:
        copy = vault / "show" / "sh090" / frame.name
        assert hash_file(str(copy)) == hash_file(str(frame))
    assert list(vault.rglob(".sitesync-*")) == [], "a temporary file was left behind"


def test_usage_switched_off_reports_no_space(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    c.add_site("vault", "local_drive", [f"work={sqlite_studio.root}"], {"disable_capabilities": ["usage"]})
    c.add_site("disk", "local_drive", [f"work={sqlite_studio.root}"])
    assert c.site_usage("disk", "show")["known"] is True
    off = c.site_usage("vault", "show")
    assert off["known"] is False and off["free"] is None and off["reason"] == "the provider cannot tell"
    sites = {s["name"]: s for s in c.sites_overview("show")}
    assert "usage" not in sites["vault"]["capabilities"] and sites["vault"]["usage_known"] is False
    assert "usage" in sites["disk"]["capabilities"]


def test_the_reference_documents_the_switch() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text(encoding="utf-8")
    local = text.split("### `local_drive`", 1)[1].split("### ", 1)[0]
    assert "Capabilities: `local_copy`, `local_path`, `staged_write`, `usage`" in local
    assert "| `disable_capabilities` |" in local
    assert "native_hash" not in text and "server_side_copy" not in text


def test_the_contract_suite_checks_the_capabilities_a_provider_has(tmp_path: Path) -> None:
    class Unverified(LocalDriveProvider):
        """Copies from a local path without showing the stored copy to verify()."""

        def write_local(self, path: str, source: str, size: int, verify: Any, on_bytes: Any = None, **kw: Any) -> Any:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(Path(source).read_bytes())
            return self.stat(path)

    assert Capability.LOCAL_COPY in Unverified.supported_capabilities()
    results = {
        r.name: r for r in run_conformance(Unverified.from_options("u", {}, {"work": str(tmp_path)}), str(tmp_path))
    }
    assert not results["local_copy"].ok and "verify() must get the stored copy" in results["local_copy"].detail
    assert results["usage"].ok and not results["usage"].skipped
    assert results["staged_write"].skipped, "its write_local takes no `staged`: it cannot stage"

    memory = {r.name: r for r in run_conformance(provider_class("memory").from_options("m", {}, {"work": "/m"}), "/m")}
    assert all(
        memory[c].skipped and "not implemented" in memory[c].detail for c in ("local_path", "local_copy", "usage")
    )
