"""Settings that name programs, credentials files or secrets of a machine come only from that
machine's local settings: the REST API (403) and the command line (exit 2, one line naming
`--local`) refuse them in the shared settings, a value found there anyway makes the site unusable
(nothing is run, nothing is read), and a credential given locally is only sent where local
settings say. Every declared option of every provider is tried, on both faces."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sitesync.providers.base import LocalOnly
from sitesync.providers.registry import builtin_provider_names, provider_class, provider_names_for_tests
from sitesync.settings.scopes import REFERENCE_PREFIXES, local_only_options
from tests.apikit import TOKEN, api_client
from tests.cli_inprocess import run_cli_inprocess
from tests.conftest import Studio, db_snapshot, module_studio
from tests.servers import rclone_binary

API = "/api/v1"
# a valid shared definition of each provider, so refusals are about the one option tried
BASE_OPTIONS: dict[str, dict[str, Any]] = {
    "rclone": {"type": "webdav", "options": {"url": "http://127.0.0.1:9"}},
    "s3": {"bucket": "some-bucket"},
    "sftp": {"host": "127.0.0.1", "user": "u"},
    "gdrive": {"credentials_json": "{}", "folder_id": "x"},
    "dropbox": {"token": "literal-token"},
    "memory": {"namespace": "n"},
    "faulty": {"inner": "rclone", "inner_options": {"type": "webdav", "options": {"url": "http://127.0.0.1:9"}}},
    "local_drive": {},
}
# rclone backend options the declaration must cover (commands, local files, ambient credentials,
# other remotes); test_rclone_declaration_covers_rclones_own_dangerous_options checks rclone's list
RCLONE_LOCAL_KEYS = ["ssh", "key_file", "bearer_token_command", "md5sum_command", "service_account_file", "env_auth"]


def _sample(info: Any) -> Any:
    text = str(info.annotation)
    if "list" in text:
        return ["--config", "/etc/shadow"]
    return "/tmp/sitesync-test-not-a-real-program"


def local_only_cases() -> list[tuple[str, str, Any]]:
    """(provider, option path, value) for every local-only declaration and every secret reference."""
    cases = []
    for name in builtin_provider_names() + provider_names_for_tests():
        model = provider_class(name).Config
        for field, info in model.model_fields.items():
            for marker in info.metadata:
                if isinstance(marker, LocalOnly) and marker.keys is None:
                    cases.append((name, field, _sample(info)))
                elif isinstance(marker, LocalOnly):
                    keys = RCLONE_LOCAL_KEYS if name == "rclone" else []
                    cases += [(name, f"{field}.{key}", "/tmp/x") for key in keys]
            if "SecretStr" in str(info.annotation):
                sub = ".pass" if "dict" in str(info.annotation) else ""
                cases += [(name, f"{field}{sub}", f"{prefix}SOMETHING") for prefix in REFERENCE_PREFIXES]
    cases.append(("faulty", "inner_options.rclone", "/tmp/x"))
    cases.append(("faulty", "inner_options.secrets.pass", "file:/etc/shadow"))
    return cases


CASES = local_only_cases()


def test_the_cases_cover_every_provider_with_a_declaration() -> None:
    covered = {provider for provider, _, _ in CASES}
    assert {"rclone", "s3", "sftp", "gdrive", "dropbox", "faulty", "memory"} <= covered
    assert {("rclone", "rclone"), ("rclone", "config_file"), ("rclone", "extra_args"), ("sftp", "key_file")} <= {
        (p, o) for p, o, _ in CASES
    }


@pytest.fixture(scope="module")
def providers_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    """One studio with a site of each provider (named after it), shared by the refusal cases."""
    with module_studio(tmp_path_factory, "local-only") as studio:
        for name, options in BASE_OPTIONS.items():
            studio.client.add_site(f"s-{name}", name, [], options)
        yield studio


@pytest.mark.parametrize(("provider", "option", "value"), CASES, ids=[f"{p}:{o}={v}"[:70] for p, o, v in CASES])
def test_refused_in_shared_settings_on_both_faces(
    providers_studio: Studio, provider: str, option: str, value: Any
) -> None:
    studio, site = providers_studio, f"s-{provider}"
    local_file = studio.home / "config" / "local.toml"
    before = (db_snapshot(studio.db_url), local_file.read_bytes())
    with api_client(studio, token=TOKEN) as http:
        for key, project in (
            (f"system.sites.{site}.options.{option}", None),
            (f"sites.{site}.options.{option}", "show"),
        ):
            answer = http.put(f"{API}/settings", json={"key": key, "value": value, "project": project})
            assert answer.status_code == 403, answer.text
            assert answer.json()["error"] == "ForbiddenError"
            assert "never from the shared settings or the REST API" in answer.json()["detail"]
            assert f"--local sites.{site}.options.{option} VALUE" in answer.json()["detail"]
        # nor into the server machine's own local settings: that is done on the machine itself
        local = http.put(
            f"{API}/settings", json={"key": f"sites.{site}.options.{option}", "value": value, "local": True}
        )
        assert local.status_code == 403 and "cannot be written through the REST API" in local.json()["detail"]
    shown = value if isinstance(value, str) else json.dumps(value)
    for args in (
        ["settings", "set", f"system.sites.{site}.options.{option}", shown],
        ["settings", "set", "--project", "show", f"sites.{site}.options.{option}", shown],
    ):
        proc = run_cli_inprocess(*args, env=studio.env())
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert f"`sitesync settings set --local sites.{site}.options.{option} VALUE`" in proc.stderr
    assert (db_snapshot(studio.db_url), local_file.read_bytes()) == before


def test_the_command_line_refuses_them_in_its_own_process(sqlite_studio: Studio) -> None:
    sqlite_studio.client.add_site("r", "rclone", [], {"type": "local"})
    proc = sqlite_studio.cli(
        "settings", "set", "system.sites.r.options.config_file", "/root/.config/rclone/rclone.conf"
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: system.sites.r.options.config_file names a file the service reads credentials from: it is taken "
        "only from this machine's local settings, never from the shared settings or the REST API; set it on each "
        "machine that needs it with `sitesync settings set --local sites.r.options.config_file VALUE`"
    ]


def test_site_add_refuses_them_and_takes_them_as_local_options(sqlite_studio: Studio, tmp_path: Path) -> None:
    proc = sqlite_studio.cli(
        "site", "add", "r", "--provider", "rclone", "--set", "type=local", "--set", "rclone=/usr/bin/true"
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: option rclone names a program the service runs: it is taken only from this machine's local "
        "settings, never from the shared settings or the REST API; give it with --local-set rclone=VALUE (or "
        "`sitesync settings set --local sites.r.options.rclone VALUE` on each machine)"
    ]
    ok = sqlite_studio.cli(
        "site", "add", "r", "--provider", "rclone", "--set", "type=local", "--local-set", f"rclone={rclone_binary()}"
    )
    assert ok.returncode == 0, ok.stderr
    c = sqlite_studio.client
    assert c.local_settings().sites["r"].options == {"rclone": rclone_binary()}
    assert "rclone" not in c.documents().system["sites"]["r"]["options"]
    shown = c.site("r")
    assert shown["local_options"] == {"rclone": rclone_binary()} and "rclone" not in shown["options"]


def test_settings_import_refuses_them(sqlite_studio: Studio, tmp_path: Path) -> None:
    sqlite_studio.client.add_site("r", "rclone", [], {"type": "local"})
    exported = sqlite_studio.cli("settings", "export", check=True).stdout
    evil = exported.replace('type = "local"', 'type = "local"\nrclone = "/tmp/evil"')
    assert evil != exported
    path = tmp_path / "evil.toml"
    path.write_text(evil)
    before = db_snapshot(sqlite_studio.db_url)
    proc = sqlite_studio.cli("settings", "import", str(path))
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        "error: system.sites.r.options.rclone names a program the service runs: it is taken only from this "
        "machine's local settings, never from the shared settings or the REST API; set it on each machine that "
        "needs it with `sitesync settings set --local sites.r.options.rclone VALUE`; nothing was imported"
    ]
    assert db_snapshot(sqlite_studio.db_url) == before


def _evil_program(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "ran"
    program = tmp_path / "evil.sh"
    program.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, marker


def test_no_program_runs_through_the_api(sqlite_studio: Studio, tmp_path: Path) -> None:
    """The hole: write a settings key naming an executable through the API, then trigger it with a
    site check. The write is refused and nothing runs."""
    program, marker = _evil_program(tmp_path)
    sqlite_studio.client.add_site("r", "rclone", [f"work={tmp_path / 'r'}"], {"type": "local"})
    with api_client(sqlite_studio, token=TOKEN) as http:
        write = http.put(f"{API}/settings", json={"key": "system.sites.r.options.rclone", "value": str(program)})
        assert write.status_code == 403, write.text
        extra = http.put(
            f"{API}/settings", json={"key": "system.sites.r.options.extra_args", "value": ["--config", str(program)]}
        )
        assert extra.status_code == 403
        http.post(f"{API}/sites/r/check", json={"project": "show"})
    proc = sqlite_studio.cli("settings", "set", "system.sites.r.options.rclone", str(program))
    assert proc.returncode == 2 and "--local" in proc.stderr
    sqlite_studio.cli("site", "test", "r", "--project", "show")
    assert not marker.exists(), "a program named through the shared settings ran"


def test_found_in_the_shared_settings_anyway_the_site_is_refused(sqlite_studio: Studio, tmp_path: Path) -> None:
    """Written straight into the database (an older version, or anyone with database access): every
    machine refuses the site with the reason, runs nothing and reveals nothing."""
    program, marker = _evil_program(tmp_path)
    c = sqlite_studio.client
    c.add_site("r", "rclone", [f"work={tmp_path / 'r'}"], {"type": "local"})
    c.add_site("vault", "memory", [f"work={tmp_path / 'v'}"], {"namespace": "v"})
    system = c.documents().system
    system["sites"]["r"]["options"]["rclone"] = str(program)
    system["sites"]["vault"]["options"]["token"] = "file:/etc/shadow"
    c.store.put_settings({"system": system}, "raw-sql")
    c.settings_set("always_accessible_on", ["r", "vault"], project="show")
    rep = sqlite_studio.publish([sqlite_studio.write("a.bin", b"a")])
    report = sqlite_studio.sync()
    assert report.failed_attempts == 0
    assert not marker.exists(), "a program named in the shared settings ran"
    replicas = {r["site"]: r for r in c.status(representation=rep)["files"][0]["replicas"]}
    assert replicas["r"]["status"] == "queued" and replicas["vault"]["status"] == "queued"
    with api_client(sqlite_studio, token=TOKEN) as http:
        for site, option in (("r", "rclone"), ("vault", "token")):
            check = http.post(f"{API}/sites/{site}/check", json={"project": "show"}).json()
            assert check["available"] is False
            assert check["reason"] == (
                f"site {site}: the shared settings give option {option}, which "
                + (
                    "names a program the service runs"
                    if site == "r"
                    else local_only_options("memory", {"token": "file:x"})[0].why
                )
                + ": it is taken only from each machine's local settings; remove it from the shared settings and set "
                f"it with `sitesync settings set --local sites.{site}.options.{option} VALUE`"
            )
            shown = http.get(f"{API}/sites/{site}", params={"project": "show"}).json()
            assert shown["refused"] == check["reason"]
    proc = sqlite_studio.cli("site", "test", "r", "--project", "show", "--json")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("error: site r: the shared settings give option rclone, which names a program")
    assert not marker.exists()


def test_local_settings_take_them(sqlite_studio: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = sqlite_studio.client
    monkeypatch.setenv("SITESYNC_TEST_VAULT", "from-the-environment")
    c.add_site("vault", "memory", [f"work={tmp_path / 'v'}"], {"namespace": "v"})
    proc = sqlite_studio.cli("settings", "set", "--local", "sites.vault.options.token", "env:SITESYNC_TEST_VAULT")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("sites.vault.options.token = '********'")
    spec = c.view().project("show").sites["vault"]
    assert spec.refused is None and spec.options["token"] == "env:SITESYNC_TEST_VAULT"
    with api_client(sqlite_studio, token=TOKEN) as http:
        assert http.post(f"{API}/sites/vault/check", json={"project": "show"}).json()["available"] is True
        # harmless options of a site may still be set through the API in the server's local settings
        ok = http.put(f"{API}/settings", json={"key": "sites.vault.options.namespace", "value": "w", "local": True})
        assert ok.status_code == 200, ok.text


def test_credentials_of_this_machine_go_only_where_it_says(sqlite_studio: Studio) -> None:
    """A password given on this machine is never sent to a host the shared settings name."""
    c = sqlite_studio.client
    c.add_site("vendor", "sftp", ["work=/srv"], {"host": "attacker.example", "user": "u"})
    proc = sqlite_studio.cli("settings", "set", "--local", "sites.vendor.options.password", "env:VENDOR_PASSWORD")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: site vendor: host (receives password) comes from the shared settings while its credentials come "
        "from this machine; where this machine's credentials are sent must be set here too: "
        "`sitesync settings set --local sites.vendor.options.host VALUE`"
    ]
    sqlite_studio.cli("settings", "set", "--local", "sites.vendor.options.host", "sftp.studio.lan", check=True)
    sqlite_studio.cli("settings", "set", "--local", "sites.vendor.options.password", "env:VENDOR_PASSWORD", check=True)
    assert c.view().project("show").sites["vendor"].refused is None
    # the shared host changes afterwards (or the local file is edited by hand): still refused at use
    local_file = sqlite_studio.home / "config" / "local.toml"
    local_file.write_text(local_file.read_text().replace('host = "sftp.studio.lan"\n', ""))
    spec = c.view().project("show").sites["vendor"]
    assert spec.refused is not None and spec.refused.startswith("site vendor: host (receives password)")
    with api_client(sqlite_studio, token=TOKEN) as http:
        check = http.post(f"{API}/sites/vendor/check", json={"project": "show"}).json()
    assert check["available"] is False and check["reason"] == spec.refused


def test_declarations_reach_the_json_schema_and_the_reference() -> None:
    schema = provider_class("rclone").Config.model_json_schema()
    assert schema["properties"]["rclone"]["x-sitesync-local-only"] == "names a program the service runs"
    assert "x-sitesync-destination" in provider_class("sftp").Config.model_json_schema()["properties"]["host"]
    reference = (Path(__file__).resolve().parents[1] / "docs" / "reference.md").read_text()
    assert reference.count("**Local only**") >= 8


def test_rclone_declaration_covers_rclones_own_dangerous_options() -> None:
    """rclone's own list of backend options: every one that names a command, a local file or
    ambient credentials is local-only in the declaration."""
    listing = subprocess.run([rclone_binary(), "config", "providers"], capture_output=True, text=True, check=True)
    names = {option["Name"] for backend in json.loads(listing.stdout) for option in backend["Options"]}
    dangerous = {
        n
        for n in names
        if re.search(r"command|(^|_)file$|_path$|^ssh$|env_auth|socket|^key_use_agent$|^remote$|^upstreams$", n)
    }
    assert len(dangerous) >= 20, dangerous
    found = local_only_options("rclone", {"type": "sftp", "options": dict.fromkeys(dangerous, "x")})
    assert {f.option.removeprefix("options.") for f in found} == dangerous
