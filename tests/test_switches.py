"""Per-project and per-site switches, and isolation: a disabled project or site is skipped without
errors (and a disabled site is never even contacted); a misconfigured or unreachable site never
blocks the other sites or projects (the predecessor let one broken cloud site stop everything)."""

from __future__ import annotations

import pytest

from sitesync.errors import InvalidInputError
from sitesync.providers import memory, registry
from sitesync.providers.local_drive import LocalDriveProvider
from tests.conftest import SITE_ID, Studio
from tests.test_sync_flow import replica_states


def _other_project(studio: Studio, **settings: object) -> None:
    c = studio.client
    c.create_project("other", {"work": {"any": str(studio.studio_root)}})
    for key, value in {"active_site": "local", "remote_site": "studio", "retry_backoff": 0, **settings}.items():
        c.settings_set(key, value, project="other")


def _publish_other(studio: Studio, name: str) -> int:
    return studio.client.publish(
        "other", folder="a", product=name, version=1, name="n", files=[str(studio.write(f"{name}.bin", b"o"))]
    ).representation_id


def _events(studio: Studio, kind: str) -> list:
    return [e for e in studio.client.store.events(limit=10_000) if e.kind == kind]


def test_disabled_project_is_skipped_without_errors(studio: Studio) -> None:
    _other_project(studio)
    waiting = _publish_other(studio, "p1")
    studio.client.settings_set("enabled", False, project="other")
    good = studio.publish([studio.write("g.bin", b"g")])
    report = studio.client.sync_once()
    assert report.errors == [] and report.failed_attempts == 0 and report.transferred == 1
    assert replica_states(studio, good)["studio"] == ["present"]
    assert replica_states(studio, waiting)["studio"] == ["queued"]
    # validate and fsck over every project skip it and say why; named explicitly they refuse
    result = studio.client.fsck("studio")
    assert [s["project"] for s in result["skipped"]] == ["other"] and "disabled" in result["skipped"][0]["reason"]
    assert result["projects"] == ["show"]
    with pytest.raises(InvalidInputError, match="project is disabled"):
        studio.client.validate("studio", "other")
    studio.client.settings_set("enabled", True, project="other")
    assert studio.client.sync_once().transferred == 1
    assert replica_states(studio, waiting)["studio"] == ["present"]


def test_disabled_site_is_never_contacted(studio: Studio) -> None:
    c = studio.client
    c.add_site("cloud", "memory", [], {"namespace": "cloud"})
    c.settings_set("always_accessible_on", "cloud", project="show")
    c.settings_set("sites.cloud.enabled", False, project="show")
    memory.set_offline("cloud")
    rep = studio.publish([studio.write("c.bin", b"c")])
    report = studio.sync()
    assert report.errors == [] and report.failed_attempts == 0
    states = replica_states(studio, rep)
    assert states["studio"] == ["present"] and states["cloud"] == ["queued"]
    assert _events(studio, "site_unavailable") == [], "a disabled site must not be checked at all"
    # switched on (and still offline): now it is checked, found unreachable, and nothing burns attempts
    c.settings_set("sites.cloud.enabled", True, project="show")
    report = studio.sync()
    assert report.failed_attempts == 0
    assert [e.site for e in _events(studio, "site_unavailable")] == ["cloud"]
    detail = c.status(representation=rep)
    cloud = next(r for r in detail["files"][0]["replicas"] if r["site"] == "cloud")
    assert cloud["status"] == "queued" and cloud["attempts"] == 0


def test_unreachable_site_does_not_block_other_sites_of_the_project(studio: Studio) -> None:
    c = studio.client
    c.add_site("cloud", "memory", [], {"namespace": "cloud"})
    c.add_site("backup", "local_drive", [f"work={studio.root / 'backup'}"], {"create_roots": True})
    c.settings_set("always_accessible_on", ["cloud", "backup"], project="show")
    memory.set_offline("cloud")
    reps = [studio.publish([studio.write(f"u{i}.bin", b"u" * (i + 1))]) for i in range(3)]
    report = studio.sync()
    assert report.transferred == 6 and report.failed_attempts == 0
    for rep in reps:
        states = replica_states(studio, rep)
        assert states["studio"] == ["present"] and states["backup"] == ["present"] and states["cloud"] == ["queued"]


def test_site_whose_provider_is_not_installed_here_blocks_nothing(studio: Studio) -> None:
    """A site defined with a provider plugin this machine lacks (uninstalled, or only installed on
    the studio servers): everything else keeps working, commands included."""

    class Vendor(LocalDriveProvider):
        name = "vendor_ftp"

    registry.register("vendor_ftp", Vendor)
    c = studio.client
    try:
        c.add_site("vendor", "vendor_ftp", [f"work={studio.root / 'vendor'}"], {"create_roots": True})
        c.settings_set("always_accessible_on", "vendor", project="show")
    finally:
        registry.unregister("vendor_ftp")
    _other_project(studio)
    mine = studio.publish([studio.write("m.bin", b"m")])
    theirs = _publish_other(studio, "p2")
    report = c.sync_once()
    assert report.transferred == 2 and report.failed_attempts == 0
    assert replica_states(studio, mine) == {SITE_ID: ["present"], "studio": ["present"], "vendor": ["queued"]}
    assert replica_states(studio, theirs)["studio"] == ["present"]
    unavailable = _events(studio, "site_unavailable")
    assert {e.site for e in unavailable} == {"vendor"} and "vendor_ftp" in (unavailable[0].message or "")
    assert {s["name"] for s in c.sites()} >= {"vendor", "studio"}
    assert c.status("show")["total"] == 1


def test_site_without_a_location_for_the_root_fails_only_its_files(studio: Studio) -> None:
    c = studio.client
    c.add_site("half", "local_drive", [f"renders={studio.root / 'half'}"], {"create_roots": True})
    c.settings_set("always_accessible_on", "half", project="show")
    c.settings_set("retry_count", 1, project="show")
    rep = studio.publish([studio.write("h.bin", b"h")])
    report = studio.sync()
    assert report.transferred == 1 and report.failed_attempts == 1
    detail = c.status(representation=rep)
    half = next(r for r in detail["files"][0]["replicas"] if r["site"] == "half")
    assert half["status"] == "failed" and "no location for root 'work'" in half["last_error"]
    assert replica_states(studio, rep)["studio"] == ["present"]
