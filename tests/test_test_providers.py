"""The test-only providers (``memory``, ``faulty``) stay out of the users' storage choices: not
listed by ``info``, the REST API, ``site add`` errors or the generated reference, and refused by
``site add`` / ``site test`` unless test providers are switched on (``sitesync.testing``), as they
are for this suite and the processes it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitesync.errors import ProviderNotAvailableError
from sitesync.providers.registry import (
    TEST_PROVIDERS_ENV,
    builtin_provider_names,
    installed_provider_names,
    provider_class,
    provider_names,
    provider_names_for_tests,
)
from tests.conftest import Studio, run_cli

TEST_ONLY = {"memory", "faulty"}


def test_test_providers_are_listed_apart() -> None:
    assert set(provider_names_for_tests()) == TEST_ONLY
    for names in (provider_names(), installed_provider_names(), builtin_provider_names()):
        assert TEST_ONLY.isdisjoint(names), names
    assert {"local_drive", "s3", "sftp", "gdrive", "dropbox", "rclone"} <= set(builtin_provider_names())


def test_they_resolve_only_where_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    assert provider_class("memory").name == "memory"  # this suite switches them on (conftest)
    monkeypatch.delenv(TEST_PROVIDERS_ENV)
    for name in TEST_ONLY:
        with pytest.raises(ProviderNotAvailableError, match=f"provider '{name}' is for sitesync's own tests"):
            provider_class(name)
    monkeypatch.setenv(TEST_PROVIDERS_ENV, "1")
    assert provider_class("faulty").name == "faulty"


def test_users_are_not_offered_them(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    studio.client.add_site("scratch", "memory", ["work=/scratch"], {"namespace": "scratch"})
    env = studio.env()
    env.pop(TEST_PROVIDERS_ENV, None)

    info = run_cli("info", env=env, check=True).stdout
    [line] = [line for line in info.splitlines() if line.strip().startswith("providers")]
    assert "local_drive" in line and "memory" not in line and "faulty" not in line
    assert TEST_ONLY.isdisjoint(studio.client.info().providers)  # what the API and dashboard show

    refused = run_cli("site", "add", "ram", "--provider", "memory", "--root", "work=/r", env=env)
    assert refused.returncode == 2
    assert refused.stderr.splitlines() == [
        "error: provider 'memory' is for sitesync's own tests and is not a storage choice; "
        f"use one of: {', '.join(provider_names())}"
    ]
    unknown = run_cli("site", "add", "x", "--provider", "nope", "--root", "work=/r", env=env)
    assert unknown.returncode == 2 and "installed providers: " in unknown.stderr
    assert not any(name in unknown.stderr for name in TEST_ONLY)

    tested = run_cli("site", "test", "scratch", "--project", "show", env=env)
    assert tested.returncode == 2 and "is for sitesync's own tests" in tested.stderr


def test_the_reference_does_not_document_them() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text(encoding="utf-8")
    assert "### `memory`" not in text and "### `faulty`" not in text
    assert "### `local_drive`" in text


def test_a_third_party_package_is_found_and_a_broken_one_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Providers other packages install: found through the entry point, offered to users, not in
    the committed reference; one whose module fails to import makes only its sites unusable."""
    from sitesync.providers import registry

    (tmp_path / "studio_tape.py").write_text(
        "from sitesync.providers.memory import MemoryProvider\n\nclass Tape(MemoryProvider):\n    name = 'tape'\n"
    )
    (tmp_path / "studio_broken.py").write_text("raise TypeError('written for an older sitesync')\n")
    info = tmp_path / "studio_tape-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-tape\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[sitesync.providers]\ntape = studio_tape:Tape\nbroken = studio_broken:Nothing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry._entry_points.cache_clear()
    registry._load.cache_clear()
    try:
        assert {"tape", "broken"} <= set(provider_names()) and "tape" in installed_provider_names()
        assert "tape" not in builtin_provider_names()
        assert provider_class("tape").__name__ == "Tape"
        with pytest.raises(
            ProviderNotAvailableError, match=r"provider 'broken' could not be loaded \(TypeError: written"
        ):
            provider_class("broken")
    finally:
        monkeypatch.undo()
        registry._entry_points.cache_clear()
        registry._load.cache_clear()
    assert "tape" not in provider_names()
