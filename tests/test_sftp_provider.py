"""The ``sftp`` provider's own behaviour against OpenSSH's sshd on loopback: permission denied,
reconnection after the server drops the connection, key files with passphrases, passwords,
one connection per worker thread, hidden temporary files, option validation."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import threading
from pathlib import Path

import pytest

from sitesync.errors import InvalidSettingError, PermanentStorageError, SiteUnavailableError, VerificationError
from sitesync.providers.registry import provider_class
from sitesync.providers.sftp import SftpProvider
from tests.conftest import Studio, define_site
from tests.remote_servers import new_remote_folder
from tests.servers import SshServer, _keygen, running


def sftp(server: SshServer, folder: Path, **options: object) -> SftpProvider:
    provider = provider_class("sftp").from_options(
        "vendor", server.options(base_path=str(folder), **options), {"work": "/w"}
    )
    assert isinstance(provider, SftpProvider)
    return provider


def lock(folder: Path) -> None:
    """Make ``folder`` read-only for the SFTP login user (root ignores modes, so hand it to root);
    its parents are created for the login user."""
    owner = folder.parent
    while not owner.exists():
        owner = owner.parent
    missing = [p for p in folder.parents if not p.exists()]
    folder.mkdir(parents=True)
    if os.geteuid() == 0:
        st = owner.stat()
        for parent in missing:
            os.chown(parent, st.st_uid, st.st_gid)
        os.chown(folder, 0, 0)
        folder.chmod(0o755)
    else:
        folder.chmod(0o555)


def test_permission_denied_fails_the_file_and_leaves_nothing(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    lock(folder / "w" / "locked")
    provider = sftp(sshd, folder)
    try:
        provider.check()
        with pytest.raises(PermanentStorageError, match=r"^site vendor: write /w/locked/a/b.bin: permission denied"):
            provider.write("/w/locked/a/b.bin", io.BytesIO(b"data"), 4, lambda: None)
        assert list((folder / "w" / "locked").iterdir()) == []
        provider.write("/w/open/b.bin", io.BytesIO(b"data"), 4, lambda: None)
        assert (folder / "w" / "open" / "b.bin").read_bytes() == b"data"
    finally:
        provider.close()


def test_reconnects_after_the_server_drops_the_connection(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    provider = sftp(sshd, folder)
    try:
        logins = sshd.logins()
        provider.write("/w/a.bin", io.BytesIO(b"before"), 6, lambda: None)
        assert sshd.logins() == logins + 1
        sessions = sshd.session_pids()
        assert sshd.drop_connections() >= 2  # the privileged per-connection process and its child
        assert not any(running(pid) for pid in sessions), "a session process survived"
        assert provider.stat("/w/a.bin").size == 6  # reconnects and retries the request
        assert sshd.logins() == logins + 2, "the provider answered without a new connection"
        provider.write("/w/b.bin", io.BytesIO(b"after"), 5, lambda: None)
        with provider.open_read("/w/b.bin") as fh:
            assert fh.read() == b"after"
    finally:
        provider.close()


def _open_on_server(pids: list[int], path: Path) -> bool:
    """Some process of the server has ``path`` open."""
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == str(path):
                        return True
    return False


def test_closing_a_read_does_not_wait_for_the_server_and_the_handle_still_closes(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    provider = sftp(sshd, folder)
    try:
        provider.write("/w/plate.exr", io.BytesIO(b"frame" * 1000), 5000, lambda: None)
        fh = provider.open_read("/w/plate.exr")
        assert fh.read() == b"frame" * 1000
        sessions = sshd.session_pids()
        assert _open_on_server(sessions, folder / "w" / "plate.exr")
        for pid in sessions:  # the server stops answering: a close that waits for its answer hangs
            os.kill(pid, signal.SIGSTOP)
        try:
            # the server stays stopped until the close returns: a close that waited for its answer
            # would never return (the bound only keeps such a bug from hanging the suite)
            closer = threading.Thread(target=fh.close, daemon=True)
            closer.start()
            closer.join(60)
            assert not closer.is_alive(), "closing a read handle waited for the server's answer"
        finally:
            for pid in sessions:
                os.kill(pid, signal.SIGCONT)
        assert provider.stat("/w/plate.exr").size == 5000  # a later answer: the close went before it
        assert not _open_on_server(sessions, folder / "w" / "plate.exr"), "the read handle was never closed"
    finally:
        provider.close()


def test_one_connection_per_worker_thread_reused(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    provider = sftp(sshd, folder)
    try:
        for i in range(5):
            provider.write(f"/w/same/{i}.bin", io.BytesIO(b"x"), 1, lambda: None)
        assert len(provider.connections.sessions) == 1

        def work(n: int) -> None:
            for i in range(3):
                provider.write(f"/w/t{n}/{i}.bin", io.BytesIO(b"y"), 1, lambda: None)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({s.conn for s in provider.connections.sessions.values()}) == 4
        assert len(list(provider.list("/w"))) == 14
    finally:
        provider.close()
    assert provider.connections.sessions == {}


def test_key_passphrase_from_the_environment(sshd: SshServer, tmp_path: Path, monkeypatch) -> None:
    key = tmp_path / "locked_key"
    _keygen(key, passphrase="correct horse")
    authorized = sshd.workdir / "authorized_keys"
    authorized.write_text(authorized.read_text() + (tmp_path / "locked_key.pub").read_text())
    folder = new_remote_folder(sshd)
    monkeypatch.setenv("SITESYNC_TEST_PASSPHRASE", "correct horse")
    good = sftp(sshd, folder, key_file=str(key), key_passphrase="env:SITESYNC_TEST_PASSPHRASE")
    try:
        good.check()
    finally:
        good.close()
    wrong = sftp(sshd, folder, key_file=str(key), key_passphrase="battery staple")
    with pytest.raises(SiteUnavailableError, match=r"cannot decrypt key_file .*; check key_passphrase") as info:
        wrong.check()
    assert "battery staple" not in str(info.value)
    missing = sftp(sshd, folder, key_file=str(tmp_path / "nope"))
    with pytest.raises(SiteUnavailableError, match="cannot read key_file"):
        missing.check()
    unset = sftp(sshd, folder, key_file=str(key))
    with pytest.raises(SiteUnavailableError, match="set key_passphrase"):
        unset.check()


def test_wrong_password_is_refused(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    options = sshd.options(base_path=str(folder), password="not-the-password")
    del options["key_file"]
    provider = provider_class("sftp").from_options("vendor", options, {"work": "/w"})
    with pytest.raises(SiteUnavailableError, match=r"refused the login of user '\w+' \(wrong password\?\)") as info:
        provider.check()
    assert "not-the-password" not in str(info.value)


def test_missing_or_unreadable_known_hosts_refuses_and_shows_the_key(sshd: SshServer, tmp_path: Path) -> None:
    folder = new_remote_folder(sshd)
    provider = sftp(sshd, folder, known_hosts=str(tmp_path / "nope"))
    with pytest.raises(SiteUnavailableError, match=r"nope does not exist\); confirm it") as info:
        provider.check()
    assert sshd.fingerprint in str(info.value) and "host_key_fingerprint" in str(info.value)
    (tmp_path / "a-folder").mkdir()
    provider = sftp(sshd, folder, known_hosts=str(tmp_path / "a-folder"))
    with pytest.raises(SiteUnavailableError, match="a-folder cannot be read: Is a directory"):
        provider.check()


def test_missing_base_path_makes_the_site_unavailable(sshd: SshServer) -> None:
    provider = sftp(sshd, sshd.base / "no-such-folder")
    try:
        with pytest.raises(SiteUnavailableError, match=r"base_path .*no-such-folder is not a folder"):
            provider.check()
    finally:
        provider.close()


def test_temporary_files_are_hidden_and_refused_writes_leave_none(sshd: SshServer) -> None:
    folder = new_remote_folder(sshd)
    provider = sftp(sshd, folder)
    try:
        provider.write("/w/shot/a.exr", io.BytesIO(b"a"), 1, lambda: None)
        crashed = folder / "w" / "shot" / ".sitesync-b.exr.0badf00d.part"  # a writer that died mid-file
        crashed.write_bytes(b"partial")
        assert [e.path for e in provider.list("/w")] == ["/w/shot/a.exr"]
        assert provider.stat("/w/shot/b.exr") is None

        def refuse() -> None:
            raise VerificationError("hash differs")

        with pytest.raises(VerificationError):
            provider.write("/w/shot/c.exr", io.BytesIO(b"c" * 3_000_000), 3_000_000, refuse)
        assert sorted(p.name for p in (folder / "w" / "shot").iterdir()) == [crashed.name, "a.exr"]
    finally:
        provider.close()


def test_options_are_validated(sqlite_studio: Studio) -> None:
    c = sqlite_studio.client
    with pytest.raises(InvalidSettingError, match=r"host_key_fingerprint: .*ssh-keygen -lf"):
        c.add_site("v", "sftp", ["work=/srv"], {"host": "h", "user": "u", "host_key_fingerprint": "MD5:aa:bb"})
    with pytest.raises(InvalidSettingError, match="user"):
        c.add_site("v", "sftp", ["work=/srv"], {"host": "h"})
    with pytest.raises(InvalidSettingError, match="port"):
        c.add_site("v", "sftp", ["work=/srv"], {"host": "h", "user": "u", "port": 70000})
    c.add_site("v", "sftp", ["work=projects"], {"host": "h", "user": "u", "password": "hunter2"})
    shown = c.site("v")
    assert shown["options"]["password"] == "********" and shown["roots"] == {"work": {"any": "projects"}}


def test_engine_fails_only_the_file_it_may_not_write(sqlite_studio: Studio, sshd: SshServer) -> None:
    studio, c = sqlite_studio, sqlite_studio.client
    folder = new_remote_folder(sshd)
    lock(folder / "projects" / "show" / "seq01" / "sh010" / "publish" / "locked")
    define_site(c, "vendor", "sftp", ["work=/projects"], sshd.options(base_path=str(folder)))
    c.settings_set("remote_site", "vendor", project="show")
    c.settings_set("retry_count", 2, project="show")
    fine = studio.publish([studio.write("fine.bin", b"fine")], product="fine")
    locked = studio.publish([studio.write("locked.bin", b"locked")], product="locked")
    report = studio.sync()
    assert report.transferred == 1 and report.failed_attempts == 2
    [fine_remote] = [r for r in c.status(representation=fine)["files"][0]["replicas"] if r["site"] == "vendor"]
    [locked_remote] = [r for r in c.status(representation=locked)["files"][0]["replicas"] if r["site"] == "vendor"]
    assert fine_remote["status"] == "present"
    assert locked_remote["status"] == "failed" and locked_remote["attempts"] == 2
    assert "permission denied on the SFTP server" in locked_remote["last_error"]
