"""The JSON the CLI prints for ``info`` and ``whereis``: its exact shape (its keys), pinned so
the client's typed records (``facade/records.py``) print exactly what the dicts printed before."""

from __future__ import annotations

import json

from tests.conftest import SITE_ID, Studio

REPRESENTATION_KEYS = [
    "id",
    "project",
    "folder",
    "product",
    "version",
    "name",
    "files",
    "size",
    "created_at",
    "updated_at",
    "published_by",
]


def cli_json(studio: Studio, *args: str) -> dict:
    proc = studio.cli(*args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_info_json_shape(sqlite_studio: Studio) -> None:
    data = cli_json(sqlite_studio, "info")
    assert sorted(data) == sorted(
        [
            "site_id",
            "database",
            "config_dir",
            "local_settings_file",
            "data_dir",
            "local_root",
            "sync_enabled",
            "providers",
            "projects",
        ]
    )
    assert data["site_id"] == SITE_ID and isinstance(data["sync_enabled"], bool)
    assert "local_drive" in data["providers"]
    by_name = {p["name"]: p for p in data["projects"]}
    assert sorted(by_name["show"]) == sorted(["name", "sync_enabled", "active_site", "remote_site"])
    assert by_name["show"]["active_site"] == SITE_ID and by_name["show"]["remote_site"] == "studio"
    assert data == sqlite_studio.client.info().to_dict()


def test_whereis_json_shape(sqlite_studio: Studio) -> None:
    rep = sqlite_studio.publish([sqlite_studio.write("w.bin", b"where")], product="whereMain")
    sqlite_studio.sync()
    by_id = cli_json(sqlite_studio, "whereis", str(rep))
    assert sorted(by_id) == sorted(["representation", "sites"])
    assert sorted(by_id["representation"]) == sorted(REPRESENTATION_KEYS)
    assert by_id["representation"]["id"] == rep and by_id["representation"]["version"] == "v001"
    assert [sorted(s) for s in by_id["sites"]] == [sorted(["site", "status", "present", "files", "location"])] * 2
    assert {s["site"]: (s["status"], s["present"], s["files"]) for s in by_id["sites"]} == {
        SITE_ID: ("present", 1, 1),
        "studio": ("present", 1, 1),
    }
    assert by_id == sqlite_studio.client.whereis(str(rep)).to_dict()

    path = "{root[work]}/show/seq01/sh010/publish/whereMain/v001/data/w.bin"
    by_path = cli_json(sqlite_studio, "whereis", path)
    assert sorted(by_path) == sorted(["files"]) and len(by_path["files"]) == 1
    found = by_path["files"][0]
    assert sorted(found) == sorted(["path", "representation_id", "project", "copies"])
    assert (found["path"], found["representation_id"], found["project"]) == (path, rep, "show")
    assert [sorted(c) for c in found["copies"]] == [sorted(["site", "status", "location"])] * 2
    studio_copy = {c["site"]: c for c in found["copies"]}["studio"]
    assert studio_copy["status"] == "present"
    assert studio_copy["location"] == str(
        sqlite_studio.studio_root / "show/seq01/sh010/publish/whereMain/v001/data/w.bin"
    )
    assert by_path == sqlite_studio.client.whereis(path).to_dict()
