"""Secrets in the OS keyring: ``keyring:NAME`` references, stored with ``sitesync secret set``,
read by a real provider, accepted only in local settings. The keyring backend is a real one that
works headless (keyrings.alt's file backend under a scratch XDG_DATA_HOME), not a mock."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring
from pydantic import SecretStr

from sitesync.errors import SiteUnavailableError
from sitesync.secretrefs import reveal
from tests.conftest import Studio, define_site
from tests.remote_servers import new_remote_folder
from tests.servers import _keygen

BACKEND = "keyrings.alt.file.PlaintextKeyring"


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This process and the commands it starts use one keyring file under ``tmp_path``."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND)
    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    try:
        yield Path(backend.file_path)
    finally:
        keyring.set_keyring(previous)


def test_a_site_reads_its_secret_from_the_keyring(
    sqlite_studio: Studio, file_keyring: Path, sshd: Any, tmp_path: Path
) -> None:
    passphrase = "keyring passphrase 7f3a9c"
    key = tmp_path / "locked_key"
    _keygen(key, passphrase=passphrase)
    authorized = sshd.workdir / "authorized_keys"
    authorized.write_text(authorized.read_text() + (tmp_path / "locked_key.pub").read_text())

    def secret_set(*args: str, given: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "sitesync", "secret", "set", "vendor-passphrase", *args],
            input=given,
            stdin=subprocess.DEVNULL if given is None else None,
            env=sqlite_studio.env(),
            capture_output=True,
            text=True,
        )

    for args, given, line in (
        ((), None, "no terminal to type the secret in: pass --stdin and pipe it"),
        (("--stdin",), "", "the secret is empty; nothing was stored"),
    ):
        refused = secret_set(*args, given=given)
        assert refused.returncode == 2 and refused.stderr.splitlines() == [f"error: {line}"]
    proc = secret_set("--stdin", given=passphrase + "\n")
    assert proc.returncode == 0, proc.stderr
    assert passphrase not in proc.stdout + proc.stderr
    assert "use keyring:vendor-passphrase as the value" in proc.stdout
    assert file_keyring.exists() and keyring.get_password("sitesync", "vendor-passphrase") == passphrase

    c = sqlite_studio.client
    folder = new_remote_folder(sshd)
    define_site(c, "vendor", "sftp", ["work=/projects"], sshd.options(base_path=str(folder), key_file=str(key)))
    shared = sqlite_studio.cli(
        "settings", "set", "system.sites.vendor.options.key_passphrase", "keyring:vendor-passphrase"
    )
    assert shared.returncode == 2 and "is a reference to a secret of this machine" in shared.stderr
    sqlite_studio.cli(
        "settings", "set", "--local", "sites.vendor.options.key_passphrase", "keyring:vendor-passphrase", check=True
    )
    result = c.site_test("vendor", project="show", only=["reachable", "write_read_roundtrip"])
    assert result["ok"], result["checks"]

    assert sqlite_studio.cli("secret", "delete", "vendor-passphrase", check=True).stdout.startswith("deleted")
    c.close()
    gone = c.site_test("vendor", project="show", only=["reachable"])
    assert not gone["ok"]
    assert (
        "site vendor: option key_passphrase: the keyring of this user has no entry sitesync/vendor-passphrase; "
        "store it with `sitesync secret set vendor-passphrase`" in gone["checks"][0]["detail"]
    )


def test_keyring_references_resolve_and_fail_in_one_line(file_keyring: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keyring.set_password("sitesync", "token", "from-the-keyring")
    keyring.set_password("studio-vault", "s3", "another-program's")
    assert reveal(SecretStr("keyring:token"), site="s", key="token") == "from-the-keyring"
    assert reveal(SecretStr("keyring:studio-vault/s3"), site="s", key="token") == "another-program's"
    with pytest.raises(SiteUnavailableError) as missing:
        reveal(SecretStr("keyring:nope"), site="s", key="token")
    assert str(missing.value) == (
        "site s: option token: the keyring of this user has no entry sitesync/nope; store it with `sitesync secret set nope`"
    )
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    with pytest.raises(SiteUnavailableError) as none:
        reveal(SecretStr("keyring:token"), site="s", key="token")
    assert str(none.value).startswith(
        "site s: option token: cannot read keyring entry sitesync/token: no keyring backend"
    )
    assert "\n" not in str(none.value)
