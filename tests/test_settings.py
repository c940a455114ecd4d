"""Settings in layers (system -> default project -> project -> local), validation on write,
export/import, secrets, and site definitions."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import SecretStr

from sitesync import Client
from sitesync.errors import ConflictError, InvalidSettingError, NotFoundError, SiteUnavailableError
from sitesync.secretrefs import reveal
from tests.conftest import SITE_ID, Studio, db_snapshot


def test_default_project_inheritance_and_override(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    c.create_project("other", {"work": "/mnt/other"})
    c.settings_set("retry_count", 7)  # default project
    assert c.project_view("other").settings.retry_count == 7
    assert c.project_view("show").settings.retry_count == 7
    c.settings_set("retry_count", 2, project="show")
    assert c.project_view("show").settings.retry_count == 2
    assert c.project_view("other").settings.retry_count == 7
    c.settings_set("retry_count", "unset", project="show")
    assert c.project_view("show").settings.retry_count == 7


def test_local_overrides_and_local_means_this_machine(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    view = c.project_view("show")
    assert view.active_site == SITE_ID and view.remote_site == "studio"
    c.add_site("nas2", "local_drive", ["work=/mnt/nas2"])
    c.settings_set("remote_site", "nas2", local=True)  # default for every project on this machine
    assert c.project_view("show").remote_site == "nas2"
    c.settings_set("remote_site", "studio", project="show", local=True)  # project wins over default
    assert c.project_view("show").remote_site == "studio"
    c.settings_set("roots.studio.work", "/Volumes/studio", project="show", local=True)
    assert c.project_view("show").sites["studio"].roots["work"] == "/Volumes/studio"
    info = c.info()
    assert info.site_id == SITE_ID
    assert info.projects[0].active_site == SITE_ID


def test_default_change_that_breaks_a_project_is_refused(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    c.settings_set("publish_template", "{root[work]}/{project}/{filename}", project="show")
    c.create_project("other", {"work": "/mnt/other"})
    before = db_snapshot(sqlite_studio.db_url)
    # 'other' inherits the default template, and has no 'cache' root: refused, naming the project
    with pytest.raises(InvalidSettingError, match=r"publish_template.*'other'"):
        c.settings_set("publish_template", "{root[cache]}/{filename}")
    assert db_snapshot(sqlite_studio.db_url) == before
    # a project whose inherited settings would be invalid is not created either
    c.settings_set("roots", {"work": "/mnt/x", "cache": "/mnt/cache"}, project="other")
    c.settings_set("publish_template", "{root[cache]}/{filename}")
    with pytest.raises(InvalidSettingError, match="root 'cache' is not one of the project's roots"):
        c.create_project("third", {"work": "/mnt/third"})


def test_validation_messages_name_the_key(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    with pytest.raises(InvalidSettingError, match=r"^retry_count: must be at least 1 \(got 0\)$"):
        c.settings_set("retry_count", 0, project="show")
    with pytest.raises(InvalidSettingError, match=r"sites\.nowhere"):
        c.settings_set("sites.nowhere.enabled", False, project="show")
    with pytest.raises(NotFoundError, match="unknown project"):
        c.settings_set("retry_count", 3, project="ghost")


def test_export_import_roundtrip_keeps_secrets_masked(sqlite_studio: Studio, tmp_path: Path) -> None:
    c = sqlite_studio.client
    c.add_site("vault", "memory", [], {"namespace": "v", "token": "s3cr3t-t0ken"})
    c.settings_set("min_copies", 2, project="show")
    text = c.settings_export()
    assert "s3cr3t-t0ken" not in text and "********" in text
    data = tomllib.loads(text)
    assert data["projects"]["show"]["min_copies"] == 2
    assert data["system"]["sites"]["vault"]["options"]["token"] == "********"
    # import of the masked export keeps the stored secret and changes nothing else
    before = c.documents()
    c.settings_import(text)
    after = c.documents()
    assert after.system == before.system and after.projects == before.projects
    assert "s3cr3t-t0ken" in c.settings_export(include_secrets=True)
    # secrets never shown
    assert "s3cr3t-t0ken" not in str(c.settings_show()) + str(c.sites()) + str(c.site("vault"))


def test_import_creates_projects_and_is_all_or_nothing(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    good = '[projects.newshow]\nroots = { work = { any = "/mnt/new" } }\nretry_count = 4\n'
    result = c.settings_import(good)
    assert result["projects_created"] == ["newshow"]
    assert c.project_view("newshow").settings.retry_count == 4
    before = db_snapshot(sqlite_studio.db_url)
    bad = "[default_project]\nretry_count = 9\n[projects.show]\nmin_copies = 0\n"
    with pytest.raises(InvalidSettingError, match="min_copies"):
        c.settings_import(bad)
    with pytest.raises(InvalidSettingError, match="not valid TOML"):
        c.settings_import("[[[")
    assert db_snapshot(sqlite_studio.db_url) == before


def test_site_lifecycle(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    c.add_site("backup", "local_drive", [f"work={sqlite_studio.root / 'backup'}", "work@windows=B:/backup"])
    site = c.site("backup")
    assert site["roots"]["work"]["windows"] == "B:/backup"
    with pytest.raises(ConflictError, match="already exists"):
        c.add_site("backup", "local_drive")
    with pytest.raises(ConflictError, match="always exists"):
        c.add_site("studio", "local_drive")
    with pytest.raises(InvalidSettingError, match="create_roots"):
        c.add_site("bad", "local_drive", [], {"create_roots": "sometimes"})
    c.settings_set("always_accessible_on", ["backup"], project="show")
    with pytest.raises(ConflictError, match="still used by project show"):
        c.remove_site("backup")
    c.settings_set("always_accessible_on", [], project="show")
    rep = sqlite_studio.publish([sqlite_studio.write("s.bin", b"s")])
    c.upload(rep, "backup")
    with pytest.raises(ConflictError, match="--forget"):
        c.remove_site("backup")
    result = c.remove_site("backup", forget=True)
    assert result["forgotten_records"] == 1
    assert [s["name"] for s in c.sites()] == ["studio", SITE_ID]


def test_reveal_secret_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_TOKEN", "from-env")
    secret_file = tmp_path / "token.txt"
    secret_file.write_text("from-file\n")
    assert reveal(SecretStr("plain"), site="s", key="k") == "plain"
    assert reveal(SecretStr("env:MY_TOKEN"), site="s", key="k") == "from-env"
    assert reveal(SecretStr(f"file:{secret_file}"), site="s", key="k") == "from-file"
    with pytest.raises(SiteUnavailableError, match="NOT_SET_VAR") as err:
        reveal(SecretStr("env:NOT_SET_VAR"), site="s", key="token")
    assert "site s" in str(err.value)


def test_site_id_is_generated_once_and_stable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SITESYNC_SITE_ID", raising=False)
    home = tmp_path / "h"
    first = Client(db=f"sqlite:///{tmp_path / 'x.db'}", home=home).site_id
    second = Client(db=f"sqlite:///{tmp_path / 'x.db'}", home=home).site_id
    assert first == second and first not in ("local", "studio")
    monkeypatch.setenv("SITESYNC_SITE_ID", "render-node-7")
    assert Client(db=f"sqlite:///{tmp_path / 'x.db'}", home=home).site_id == "render-node-7"


def test_an_invalid_shared_option_is_refused_even_where_a_local_value_overrides_it(sqlite_studio: Studio) -> None:
    """Every other machine reads the shared settings: a local override of an option on this machine
    must not let an invalid shared value through (found with the provider guide's work)."""
    c = sqlite_studio.client
    c.add_site("vault", "local_drive", ["work=/mnt/vault"])
    c.settings_set("sites.vault.options.durability", "fsync", local=True)
    before = db_snapshot(sqlite_studio.db_url)
    with pytest.raises(InvalidSettingError, match="durability"):
        c.settings_set("sites.vault.options.durability", "maybe", project="show")
    with pytest.raises(InvalidSettingError, match="durability"):
        c.settings_set("system.sites.vault.options.durability", "maybe")
    assert db_snapshot(sqlite_studio.db_url) == before
    # valid shared values are taken as before, and this machine keeps its own
    c.settings_set("sites.vault.options.durability", "batch", project="show")
    assert c.project_view("show").sites["vault"].options["durability"] == "fsync"
