"""``sitesync site test NAME``: the contract suite against configured sites (local_drive, s3, sftp)
through the real command line; a table or JSON, exit code 1 when a check fails, 2 for bad input,
and nothing left behind on the site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sitesync.providers.conformance import CHECKS
from tests.conftest import Studio, define_site
from tests.remote_servers import new_bucket, new_remote_folder
from tests.servers import S3Server, SshServer


def test_local_drive_studio_site_table(sqlite_studio: Studio) -> None:
    before = sorted(sqlite_studio.studio_root.rglob("*"))
    proc = sqlite_studio.cli("site", "test", "studio", check=True)
    out = proc.stdout
    assert "site studio" in out and "local_drive" in out
    [line] = [line for line in out.splitlines() if line.startswith("capabilities: ")]
    assert {"local_copy", "local_path", "usage", "staged_write"} <= set(line.removeprefix("capabilities: ").split(", "))
    for name in CHECKS:
        assert name in out, f"check {name} missing from the table"
    assert f"{len(CHECKS)} passed, 0 failed, 0 skipped" in out
    assert sorted(sqlite_studio.studio_root.rglob("*")) == before, "site test left files behind"


def test_s3_and_sftp_sites_json(sqlite_studio: Studio, moto_s3: S3Server, sshd: SshServer) -> None:
    c = sqlite_studio.client
    bucket = new_bucket(moto_s3)
    define_site(c, "cloud", "s3", ["work=/projects"], moto_s3.options(bucket, prefix="studio"))
    folder = new_remote_folder(sshd)
    define_site(c, "vendor", "sftp", ["work=/projects", "cache=/cache"], sshd.options(base_path=str(folder)))

    result = json.loads(sqlite_studio.cli("site", "test", "cloud", "--json", check=True).stdout)
    assert result["ok"] and result["provider"] == "s3" and result["project"] == "show"
    assert result["location"] == "/projects" and result["capabilities"] == []
    assert [chk["name"] for chk in result["checks"]] == list(CHECKS)
    assert result["options"]["secret_access_key"] == "********"
    assert moto_s3.secret_key not in json.dumps(result)
    assert moto_s3.boto_client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0

    result = json.loads(sqlite_studio.cli("site", "test", "vendor", "--root", "cache", "--json", check=True).stdout)
    assert result["ok"] and result["root"] == "cache" and result["location"] == "/cache", result
    assert [p.name for p in folder.iterdir()] == ["cache"]
    assert list((folder / "cache").iterdir()) == [], "the scratch folder must be removed"


def test_unreachable_site_fails_with_exit_1_and_one_clear_reason(
    sqlite_studio: Studio, sshd: SshServer, tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    options = sshd.options(base_path=str(new_remote_folder(sshd)), known_hosts=str(empty), password="hunter2-secret")
    define_site(sqlite_studio.client, "vendor", "sftp", ["work=/projects"], options)
    proc = sqlite_studio.cli("site", "test", "vendor")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "hunter2-secret" not in proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and f"0 passed, {len(CHECKS)} failed" in proc.stdout
    result = sqlite_studio.client.site_test("vendor")
    reachable, *others = result["checks"]
    assert reachable["name"] == "reachable" and "presented an unknown host key" in reachable["detail"]
    assert {chk["detail"] for chk in others} == {"not run: the site is not reachable"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["site", "test", "mars"], "unknown site 'mars'"),
        (["site", "test", "studio", "--root", "nope"], "has no root 'nope'"),
        (["site", "test", "studio", "--check", "nope"], "unknown check 'nope'"),
        (["site", "test", "studio", "--project", "nope"], "unknown project 'nope'"),
    ],
)
def test_bad_input_exits_2(sqlite_studio: Studio, args: list[str], expected: str) -> None:
    proc = sqlite_studio.cli(*args)
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_this_machines_site_as_local(sqlite_studio: Studio) -> None:
    result = sqlite_studio.client.site_test("local", only=["reachable", "atomic_visibility"])
    assert (
        result["ok"]
        and result["site"] == "ws-test"
        and [c["name"] for c in result["checks"]]
        == [
            "reachable",
            "atomic_visibility",
        ]
    )
