"""Migration from OpenPype and AYON Site Sync, end to end on real databases and real files: the
settings importer, the OpenPype representation importer and the AYON Site Sync importer, each
with a dry run that changes nothing, a real run, a second run that changes nothing, then
``validate`` of the sites and ``sync``. Fixtures in tests/fixtures/migration are written in the
other systems' formats (``@ROOT@`` stands for the test's folder)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from sitesync import Client
from sitesync.errors import InvalidInputError, InvalidSettingError
from sitesync.migration.openpype_settings import map_settings
from sitesync.migration.records import Report, plain, timestamp
from sitesync.state.schema import HERO_VERSION
from tests.conftest import SITE_ID, assert_site_states_consistent, db_snapshot, run_cli
from tests.test_plan import storage_snapshot

FIXTURES = Path(__file__).parent / "fixtures" / "migration"
SECRETS = ("vendor-secret-42", "dbx-secret-token-7")


def content(template: str, size: int) -> bytes:
    seed = hashlib.sha256(template.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def place(root: Path, template: str, size: int) -> Path:
    path = root / template.split("/", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content(template, size))
    return path


def fixture_text(name: str, root: Path) -> str:
    return (FIXTURES / name).read_text().replace("@ROOT@", str(root))


def openpype_files() -> list[dict[str, Any]]:
    out = []
    for line in (FIXTURES / "openpype_representations.jsonl").read_text().splitlines():
        try:
            doc = plain(json.loads(line))
        except ValueError:
            continue
        out.extend(doc.get("files", []))
    return out


def env(home: Path, db: str) -> dict[str, str]:
    import os

    return {**os.environ, "SITESYNC_HOME": str(home), "SITESYNC_DB": db, "SITESYNC_SITE_ID": SITE_ID}


@pytest.fixture
def fresh(tmp_path: Path, db_url: str, home: Path) -> Client:
    c = Client(db=db_url, home=home)
    c.init()
    yield c
    c.close()


# ---------------------------------------------------------------------- OpenPype, end to end


def test_openpype_settings_then_representations_then_validate_and_sync(
    fresh: Client, tmp_path: Path, db_url: str, home: Path
) -> None:
    c = fresh
    settings_file = tmp_path / "openpype_settings.json"
    settings_file.write_text(fixture_text("openpype_settings.json", tmp_path))
    before = db_snapshot(db_url)

    # the dry run shows every key, hides secrets, and changes nothing
    dry = run_cli(
        "import", "openpype-settings", str(settings_file), "--dry-run", "--json", env=env(home, db_url), check=True
    )
    plan = json.loads(dry.stdout)
    assert plan["valid"] and plan["dry_run"]
    targets = {m["to"]: m["value"] for m in plan["mapped"]}
    assert targets["system.sites.nas.roots.work"] == {"windows": "N:/projects", "linux": str(tmp_path / "nas")}
    assert targets["system.sites.vendor_sftp.options.password"] == "********"
    assert targets["projects.show.retry_count"] == 3
    unmapped = {u["key"]: u["reason"] for u in plan["unmapped"]}
    assert unmapped["modules.sync_server.sites.backup_s3"] == "unknown provider 'aws_s3'"
    assert "display name" in unmapped["project_settings.show.global.sync_server.sites.dropbox_team.acting_as_member"]
    assert "oldshow" in unmapped["project_settings.oldshow"]
    assert any("host key" in n for n in plan["notes"])
    text = run_cli("import", "openpype-settings", str(settings_file), "--dry-run", env=env(home, db_url), check=True)
    assert "not mapped modules.sync_server.sites.backup_s3" in text.stdout
    for secret in SECRETS:
        assert secret not in dry.stdout + text.stdout
    assert db_snapshot(db_url) == before

    # the real import, then a second one that changes nothing
    result = c.import_openpype_settings(settings_file.read_text())
    assert result["projects_created"] == ["show"]
    assert not result["local"]["applied"]
    assert "sitesync settings set --local --project show remote_site nas" in result["local"]["commands"]
    show = c.project_view("show")
    assert show.settings.retry_count == 3 and show.settings.loop_delay == 15
    assert show.remote_site == "nas" and show.active_site == "studio"
    assert show.sites["studio"].roots["work"] == str(tmp_path / "studio")
    assert show.sites["gdrive"].enabled and not show.sites["vendor_sftp"].enabled
    system = c.documents().system_settings()
    assert system.sites["gdrive"].options["folder"] == "My Drive"
    assert system.sites["vendor_sftp"].options["port"] == 2222
    assert c.project_view("show").settings.sites["gdrive"].enabled is True
    assert c.documents().project_settings(None).sites["gdrive"].enabled is False
    snapshot = db_snapshot(db_url)
    again = c.import_openpype_settings(settings_file.read_text())
    assert again["changed"] == []
    assert db_snapshot(db_url) == snapshot

    # the studio share as OpenPype left it: one file missing, one changed after publish
    studio, nas = tmp_path / "studio", tmp_path / "nas"
    nas.mkdir()
    for f in openpype_files():
        if not f["path"].startswith("{root[work]}/"):
            continue
        if "audioMain" in f["path"]:
            continue  # gone from the studio share
        place(studio, f["path"], 22000 if "textureMain" in f["path"] else f["size"])
        if "cacheMain" in f["path"]:
            place(nas, f["path"], f["size"])  # OpenPype had synced these to the NAS
    jsonl = (FIXTURES / "openpype_representations.jsonl").read_text()
    before = db_snapshot(db_url)
    files_before = storage_snapshot(tmp_path)
    dry = c.import_representations("openpype", jsonl, "show", dry_run=True)
    assert dry["representations"]["would_import"] == 9
    assert db_snapshot(db_url) == before and storage_snapshot(tmp_path) == files_before

    result = c.import_representations("openpype", jsonl, "show")
    reps = result["representations"]
    assert reps["in_export"] == 14 and reps["created"] == 9 and reps["not_imported"] == 5
    problems = " | ".join(p["problem"] for p in result["problems"])
    assert "not a representation document" in problems
    assert "the context lacks product" in problems
    assert "not a JSON document" in problems
    assert "no location for root 'missing'" in problems
    assert "audioMain" in problems and "no readable copy" in problems
    assert any("22000 bytes where it was read" in n for n in result["notes"])
    assert any("clever-orange-dolphin" in n for n in result["notes"])
    unmapped = {u["key"] for u in result["unmapped"]}
    assert {"files[].hash", "files[].sites[].progress", "files[].sites[].id"} <= unmapped
    assert result["bytes_hashed"] > 0

    by_product = {r["product"]: r for r in c.status("show", limit=100)["representations"]}
    detail = {p: c.status(representation=r["id"]) for p, r in by_product.items()}

    def replica(product: str, site: str, index: int = 0) -> dict[str, Any]:
        return next(r for r in detail[product]["files"][index]["replicas"] if r["site"] == site)

    assert replica("animMain", "studio")["status"] == "present"
    assert replica("animMain", "nas")["status"] == "queued"
    assert replica("renderMain", "nas")["priority"] == 90
    looked = replica("lookMain", "nas")
    assert looked["status"] == "failed" and looked["attempts"] == 5 and "Permission denied" in looked["last_error"]
    model = replica("modelMain", "nas")
    assert model["status"] == "queued" and model["attempts"] == 1 and "ConnectionResetError" in model["last_error"]
    assert detail["plateMain"]["sites"]["nas"]["paused"] is True
    assert replica("layoutMain", "clever-orange-dolphin")["status"] == "present"
    assert replica("cacheMain", "gdrive")["status"] == "present"
    assert by_product["textureMain"]["size"] == 22000
    assert_site_states_consistent(c)

    # a second run adds nothing and writes nothing
    snapshot = db_snapshot(db_url)
    rerun = c.import_representations("openpype", jsonl, "show")
    assert rerun["representations"]["created"] == 0 and rerun["representations"]["unchanged"] == 9
    assert rerun["bytes_hashed"] == 0
    assert db_snapshot(db_url) == snapshot

    # validate what OpenPype said the sites hold, then sync what is wanted
    checked = c.validate("nas", "show")
    assert checked["already_present"] == 2  # the cache files are really there
    assert checked["missing"] == 1 and checked["requeued"] == 1  # the camera OpenPype thought synced
    assert c.validate("studio", "show")["already_present"] == 14
    report = c.sync_once("show")
    assert report.transferred == 8  # anim 1, render 4, model 1, camera 1, texture 1
    for product in ("animMain", "renderMain", "modelMain", "cameraMain", "textureMain"):
        for f in detail[product]["files"]:
            copy = nas / f["path"].split("/", 1)[1]
            assert copy.read_bytes() == (studio / f["path"].split("/", 1)[1]).read_bytes()
    assert replica("lookMain", "nas")["status"] == "failed"  # failed stays failed until reset
    assert not (nas / detail["plateMain"]["files"][0]["path"].split("/", 1)[1]).exists()  # paused
    assert_site_states_consistent(c)


def test_openpype_local_settings_apply_on_this_machine_only_when_asked(fresh: Client, tmp_path: Path) -> None:
    text = fixture_text("openpype_settings.json", tmp_path)
    fresh.import_openpype_settings(text)
    assert fresh.local_settings().default.roots == {}
    result = fresh.import_openpype_settings(text, apply_local=True)
    assert result["local"]["applied"]
    local = fresh.local_settings()
    assert local.default.active_site == "local"
    assert local.default.roots["local"]["work"] == str(tmp_path / "local_site/work")
    assert local.projects["show"].roots["studio"]["work"] == str(tmp_path / "studio")
    on_disk = tomllib.loads(fresh.paths.local_settings_file.read_text())
    assert on_disk["projects"]["show"]["remote_site"] == "nas"


def test_settings_import_refusals_are_one_line_and_change_nothing(
    fresh: Client, tmp_path: Path, db_url: str, home: Path
) -> None:
    doc = json.loads(fixture_text("openpype_settings.json", tmp_path))
    doc["system_settings"]["modules"]["sync_server"]["sites"]["nas"]["alternative_sites"] = ["nowhere"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    before = db_snapshot(db_url)
    dry = fresh.import_openpype_settings(bad.read_text(), dry_run=True)
    assert not dry["valid"] and "unknown site 'nowhere'" in dry["error"]
    with pytest.raises(InvalidSettingError, match="nothing was imported"):
        fresh.import_openpype_settings(bad.read_text())
    proc = run_cli("import", "openpype-settings", str(bad), env=env(home, db_url))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "nowhere" in proc.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    proc = run_cli("import", "openpype-settings", str(garbage), env=env(home, db_url))
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr
    proc = run_cli("import", "openpype-settings", str(tmp_path / "missing.json"), env=env(home, db_url))
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    with pytest.raises(InvalidInputError, match="no Site Sync settings found"):
        fresh.import_openpype_settings('{"system_settings": {}}')
    assert db_snapshot(db_url) == before


# ---------------------------------------------------------------------- AYON, end to end


def test_ayon_sitesync_import_validate_and_sync(fresh: Client, tmp_path: Path, db_url: str, home: Path) -> None:
    c = fresh
    studio, nas = tmp_path / "ayon_studio", tmp_path / "ayon_nas"
    nas.mkdir(parents=True)
    c.create_project("ayonshow", [f"work={studio}"])
    c.add_site("nas", "local_drive", [f"work={nas}"])
    c.settings_set("remote_site", "nas", project="ayonshow")
    c.settings_set("retry_count", 3, project="ayonshow")
    doc = json.loads((FIXTURES / "ayon_sitesync.json").read_text())
    for entity in doc["representations"]:
        for f in entity["files"]:
            place(studio, f["path"], f["size"])
            if f["path"].endswith((".1001.exr", ".1002.exr")) and "renderMain" in f["path"]:
                place(nas, f["path"], f["size"])  # AYON had synced these two frames
    text = (FIXTURES / "ayon_sitesync.json").read_text()
    before = db_snapshot(db_url)
    dry = run_cli(
        "import",
        "ayon-sitesync",
        str(FIXTURES / "ayon_sitesync.json"),
        "--project",
        "ayonshow",
        "--dry-run",
        "--json",
        env=env(home, db_url),
        check=True,
    )
    assert json.loads(dry.stdout)["representations"]["would_import"] == 3
    assert db_snapshot(db_url) == before

    result = c.import_representations("ayon", text, "ayonshow")
    assert result["representations"]["created"] == 3
    assert any("0000bad" in p["source_id"] for p in result["problems"])
    assert any(u["reason"].startswith("a representation with no Site Sync row") for u in result["unmapped"])
    reps = {r["product"]: r for r in c.status("ayonshow", limit=50)["representations"]}
    assert reps["animMain"]["version"] == "hero"
    hero = c.representation(reps["animMain"]["id"])
    assert hero.version == HERO_VERSION
    model = c.status(representation=reps["modelMain"]["id"])
    assert model["sites"]["nas"]["priority"] == 80
    render = c.status(representation=reps["renderMain"]["id"])
    statuses = sorted(next(r for r in f["replicas"] if r["site"] == "nas")["status"] for f in render["files"])
    assert statuses == ["failed", "present", "present"]
    failed = next(r for f in render["files"] for r in f["replicas"] if r["status"] == "failed")
    assert failed["attempts"] == 3 and "No space left" in failed["last_error"]
    anim = c.status(representation=reps["animMain"]["id"])
    assert anim["sites"]["ws-jane-7f3a2b"]["paused"] and anim["sites"]["ws-jane-7f3a2b"]["priority"] == 99

    snapshot = db_snapshot(db_url)
    assert c.import_representations("ayon", text, "ayonshow")["representations"]["unchanged"] == 3
    assert db_snapshot(db_url) == snapshot

    assert c.validate("nas", "ayonshow")["already_present"] == 2
    report = c.sync_once("ayonshow")
    assert report.transferred == 1  # the model; the failed frame waits for a reset
    model_file = reps["modelMain"]
    copy = c.whereis(str(model_file["id"]))
    assert {s["site"]: s["status"] for s in copy.to_dict()["sites"]}["nas"] == "present"
    assert_site_states_consistent(c)


def test_site_map_and_hash_from(fresh: Client, tmp_path: Path) -> None:
    """--site-map records an artist's OpenPype site as this machine's site; --hash-from reads the
    bytes from the named site only."""
    c = fresh
    c.import_openpype_settings(fixture_text("openpype_settings.json", tmp_path))
    studio = tmp_path / "studio"
    for f in openpype_files():
        if "layoutMain" in f["path"]:
            place(studio, f["path"], f["size"])
    layout_line = next(
        line for line in (FIXTURES / "openpype_representations.jsonl").read_text().splitlines() if "layoutMain" in line
    )
    with pytest.raises(InvalidInputError, match="--site-map"):
        c.import_representations("openpype", layout_line, "show", site_map=["no-equals-sign"])
    refused = c.import_representations("openpype", layout_line, "show", hash_from=["nas"])
    assert refused["representations"]["not_imported"] == 1
    assert "no readable copy" in refused["problems"][0]["problem"]
    result = c.import_representations(
        "openpype", layout_line, "show", site_map=[f"clever-orange-dolphin={SITE_ID}"], hash_from=["studio"]
    )
    assert result["representations"]["created"] == 1
    assert result["sites"][SITE_ID] == {"present": 1}
    assert not any("clever-orange-dolphin" in n for n in result["notes"])


def test_cli_representation_import_errors(fresh: Client, tmp_path: Path, db_url: str, home: Path) -> None:
    fresh.create_project("ayonshow", [f"work={tmp_path / 's'}"])
    wrong = tmp_path / "wrong.json"
    wrong.write_text('[{"representationId": "x"}]')
    proc = run_cli("import", "ayon-sitesync", str(wrong), "--project", "ayonshow", env=env(home, db_url))
    assert proc.returncode == 2 and '"representations"' in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("import", "openpype-representations", str(wrong), "--project", "nope", env=env(home, db_url))
    assert proc.returncode == 2 and "nope" in proc.stderr
    proc = run_cli(
        "import",
        "openpype-representations",
        str(wrong),
        "--project",
        "ayonshow",
        "--hash-from",
        "nowhere",
        env=env(home, db_url),
    )
    assert proc.returncode == 2 and "--hash-from: unknown site 'nowhere'" in proc.stderr


# ---------------------------------------------------------------------- the parsers


def test_extended_json_and_timestamps() -> None:
    assert plain({"_id": {"$oid": "abc"}, "n": {"$numberLong": "5"}, "d": {"$date": "x"}}) == {
        "_id": "abc",
        "n": 5,
        "d": {"$date": "x"},
    }
    assert timestamp({"$date": "2023-07-19T14:27:14.123Z"}) == pytest.approx(1689776834.123)
    assert timestamp({"$date": {"$numberLong": "1689776834123"}}) == pytest.approx(1689776834.123)
    assert timestamp(1689776834123) == pytest.approx(1689776834.123)
    assert timestamp("2023-07-19T14:27:14") == pytest.approx(1689776834)
    assert timestamp("yesterday") is None


def test_settings_mapper_edge_cases() -> None:
    doc = {
        "system_settings": {
            "modules": {
                "sync_server": {
                    "enabled": True,
                    "sites": {
                        "drive": {"provider": "gdrive"},
                        "vendor": {"provider": "sftp"},
                        "local": {"provider": "local_drive"},
                    },
                }
            }
        },
        "project_settings": {
            "__default_project__": {
                "global": {
                    "sync_server": {
                        "config": {"retry_cnt": "three", "loop_delay": "60", "future_option": 1},
                        "sites": {
                            "drive": {"root": {"work": "/My Drive/a", "publish": "/Shared Drive/b"}},
                            "vendor": {
                                "sftp_host": "h",
                                "sftp_user": "u",
                                "sftp_key": {"windows": "C:/k", "linux": "/home/k", "darwin": ""},
                            },
                            "ghost": {"enabled": True},
                        },
                    }
                }
            }
        },
    }
    out = map_settings(doc)
    unmapped = {u["key"]: u["reason"] for u in out.unmapped}
    prefix = "project_settings.__default_project__.global.sync_server"
    assert "several drives" in unmapped[f"{prefix}.sites.drive.root"]
    assert "not a number" in unmapped[f"{prefix}.config.retry_cnt"]
    assert unmapped[f"{prefix}.config.future_option"] == "no equivalent"
    assert "not defined in the system settings" in unmapped[f"{prefix}.sites.ghost"]
    assert "'local' is this machine's own site" in unmapped["modules.sync_server.sites.local"]
    assert "the Linux one was kept" in unmapped[f"{prefix}.sites.vendor.sftp_key"]
    # a key file is a file of a machine: it goes to the local settings, never to the shared ones
    assert out.local["sites"]["vendor"]["options"]["key_file"] == "/home/k"
    assert "key_file" not in out.system["sites"]["vendor"]["options"]
    assert any("key_file name files, programs or secrets of a machine" in n for n in out.notes)
    assert out.default_project["loop_delay"] == 60


def test_ayon_reader_accepts_a_database_dump() -> None:
    from sitesync.migration.ayon_sitesync import read_document

    report = Report()
    reps = read_document((FIXTURES / "ayon_sitesync.json").read_text(), report, retry_count=5)
    render = next(r for r in reps if r.product == "renderMain")
    # the studio row's data is a JSON string, as a database dump writes it
    assert {r.status for r in render.sites["studio"].files.values()} == {"present"}
    # retries 3 of 5: AYON's failed file is queued again here, with its attempts kept
    nas = render.sites["nas"].files
    assert sorted(r.status for r in nas.values()) == ["present", "present", "queued"]
    assert max(r.attempts for r in nas.values()) == 3
