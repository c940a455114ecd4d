"""local_drive's staged writes (the engine's transfers): a batch of verified copies is made durable
with one syncfs, renamed, and made durable again before the engine records it. Nothing gets its
final name before its content is on disk; a failed syncfs fails every copy whose write it may have
lost (in its batch or a later one) and leaves nothing of them under a final name; where syncfs is
not trusted, or with ``durability = "fsync"``, each copy is fsynced and renamed on its own."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest

from sitesync.errors import StorageError, TargetOccupiedError
from sitesync.providers import fileio, local_drive, registry
from sitesync.providers.base import CAP_LOCAL_COPY, CAP_STAGED_WRITE
from sitesync.providers.local_drive import LocalDriveProvider
from tests.conftest import SITE_ID, Studio


def _provider(root: Path, **options: object) -> LocalDriveProvider:
    root.mkdir(parents=True, exist_ok=True)
    provider = LocalDriveProvider.from_options("t", dict(options), {"work": str(root)})
    assert isinstance(provider, LocalDriveProvider)
    return provider


def _source(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".sitesync-*")) if folder.exists() else []


needs_syncfs = pytest.mark.skipif(
    not fileio.syncfs_trusted(os.stat(os.path.dirname(__file__)).st_dev), reason="syncfs not trusted here"
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every syncfs, fsync and rename the provider makes, in order."""
    out: list[tuple[str, str]] = []
    real_syncfs, real_fsync, real_replace = local_drive.syncfs, os.fsync, os.replace
    real_noreplace = local_drive.rename_noreplace

    def syncfs(fd: int) -> None:
        out.append(("syncfs", ""))
        real_syncfs(fd)

    def fsync(fd: int) -> None:
        out.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str, dst: str, **kw: object) -> None:
        out.append(("rename", str(dst)))
        real_replace(src, dst, **kw)  # type: ignore[arg-type]

    def rename_noreplace(src: str, dst: str, dir_fd: int) -> bool:
        out.append(("rename", dst))
        return real_noreplace(src, dst, dir_fd)

    monkeypatch.setattr(local_drive, "syncfs", syncfs)
    monkeypatch.setattr(local_drive, "rename_noreplace", rename_noreplace)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return out


@needs_syncfs
def test_a_staged_batch_is_made_durable_once_then_renamed(tmp_path: Path, calls: list[tuple[str, str]]) -> None:
    provider = _provider(tmp_path / "site")
    folder = tmp_path / "site" / "seq"
    data = {f"f.{i}.bin": os.urandom(4096 + i) for i in range(20)}
    for name, content in data.items():
        entry = provider.write_local(
            str(folder / name), _source(tmp_path, name, content), len(content), lambda s: None, staged=True
        )
        assert entry.size == len(content)
    assert not any((folder / name).exists() for name in data), "a staged copy got its final name before flush()"
    assert len(_temps(folder)) == 20 and calls == [], "staged copies are neither fsynced nor renamed one by one"
    staged_inodes = {p.stat().st_ino for p in folder.glob(".sitesync-*")}

    assert provider.flush() == {}
    kinds = [k for k, _ in calls]
    assert kinds == ["syncfs"] + ["rename"] * 20 + ["syncfs"], "content durable, then renames, then the names"
    assert _temps(folder) == []
    assert {name: (folder / name).read_bytes() for name in data} == data
    assert {(folder / name).stat().st_ino for name in data} == staged_inodes, "the entry's ref stays the copy's"
    calls.clear()
    assert provider.flush() == {} and calls == [], "an empty flush does nothing"


@needs_syncfs
def test_a_failed_syncfs_fails_the_batch_and_leaves_nothing_under_final_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _provider(tmp_path / "site")
    folder = tmp_path / "site" / "seq"
    previous = folder / "f.0.bin"
    folder.mkdir(parents=True)
    previous.write_bytes(b"the copy sitesync verified before")
    for i in range(3):
        provider.write_local(
            str(folder / f"f.{i}.bin"), _source(tmp_path, f"s{i}", b"new %d" % i), 5, lambda s: None, staged=True
        )

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(local_drive, "syncfs", failing)
    failures = provider.flush()
    assert sorted(failures) == sorted(str(folder / f"f.{i}.bin") for i in range(3))
    assert all(isinstance(e, StorageError) and "Input/output error" in str(e) for e in failures.values())
    assert previous.read_bytes() == b"the copy sitesync verified before", "the old copy was replaced anyway"
    assert not (folder / "f.1.bin").exists() and not (folder / "f.2.bin").exists()
    assert _temps(folder) == [], "the copies that may not be on disk were not removed"


@needs_syncfs
def test_a_write_running_during_a_failed_syncfs_fails_at_the_next_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """syncfs reports a write-back error once: a copy whose bytes were written before it, but which
    was staged after the flush took its batch, must fail too, not be renamed by the next flush."""
    provider = _provider(tmp_path / "site")
    folder = tmp_path / "site" / "seq"
    provider.write_local(str(folder / "a.bin"), _source(tmp_path, "a", b"aaaa"), 4, lambda s: None, staged=True)
    verifying, release = threading.Event(), threading.Event()

    def slow_verify(stored) -> None:
        stored.read()
        verifying.set()
        assert release.wait(10)

    writer = threading.Thread(
        target=provider.write_local,
        args=(str(folder / "b.bin"), _source(tmp_path, "b", b"bbbb"), 4, slow_verify),
        kwargs={"staged": True},
    )
    writer.start()
    assert verifying.wait(10)
    real = local_drive.syncfs

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(local_drive, "syncfs", failing)
    assert sorted(provider.flush()) == [str(folder / "a.bin")]
    monkeypatch.setattr(local_drive, "syncfs", real)
    release.set()
    writer.join(10)
    assert sorted(provider.flush()) == [str(folder / "b.bin")], "b's bytes may have been lost by the failed syncfs"
    assert not (folder / "a.bin").exists() and not (folder / "b.bin").exists() and _temps(folder) == []
    provider.write_local(str(folder / "c.bin"), _source(tmp_path, "c", b"cccc"), 4, lambda s: None, staged=True)
    assert provider.flush() == {} and (folder / "c.bin").read_bytes() == b"cccc", "later writes are not held back"


def test_fsync_per_file_where_syncfs_is_not_trusted_or_not_wanted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, calls: list[tuple[str, str]]
) -> None:
    fsync_mode = _provider(tmp_path / "a", durability="fsync")
    fsync_mode.write_local(str(tmp_path / "a" / "x.bin"), _source(tmp_path, "x", b"x"), 1, lambda s: None, staged=True)
    assert (tmp_path / "a" / "x.bin").read_bytes() == b"x", "durability=fsync: renamed at once"
    assert [k for k, _ in calls] == ["fsync", "rename"]

    calls.clear()
    monkeypatch.setattr(local_drive, "syncfs_trusted", lambda device: False)  # e.g. an SMB or NFS share
    network = _provider(tmp_path / "b")
    network.write_local(str(tmp_path / "b" / "y.bin"), _source(tmp_path, "y", b"y"), 1, lambda s: None, staged=True)
    assert (tmp_path / "b" / "y.bin").read_bytes() == b"y"
    assert [k for k, _ in calls] == ["fsync", "rename"]
    network.flush()
    assert "syncfs" not in [k for k, _ in calls]


def test_file_systems_whose_syncfs_is_trusted() -> None:
    here = os.stat(os.path.dirname(__file__)).st_dev
    kind = fileio.file_system_type(here)
    assert kind is not None, "the test folder's file system type was not found in /proc/self/mountinfo"
    assert fileio.syncfs_trusted(here) == (kind in fileio.SYNCFS_FILE_SYSTEMS)
    assert {"nfs", "nfs4", "cifs", "smb3", "fuse", "fuseblk", "9p", "overlay"}.isdisjoint(fileio.SYNCFS_FILE_SYSTEMS)


def test_subclasses_stage_only_where_their_flush_commits_their_write_local() -> None:
    class OwnFlush(LocalDriveProvider):  # a flush written knowing write_local (it calls it on)
        def flush(self) -> dict[str, Exception]:
            return super().flush()

    class OwnWriteLocal(LocalDriveProvider):  # cannot stage: no `staged` parameter
        def write_local(self, path, source, size, verify, on_bytes=None):
            raise RuntimeError("custom")

    class StagesWithoutFlush(LocalDriveProvider):  # the inherited flush does not know what it stages
        def write_local(self, path, source, size, verify, on_bytes=None, *, staged=False):
            raise RuntimeError("custom")

    assert CAP_STAGED_WRITE in LocalDriveProvider.supported_capabilities()
    assert CAP_STAGED_WRITE in OwnFlush.supported_capabilities()
    assert CAP_STAGED_WRITE not in OwnWriteLocal.supported_capabilities()
    assert CAP_STAGED_WRITE not in StagesWithoutFlush.supported_capabilities()
    assert (
        CAP_LOCAL_COPY in OwnWriteLocal.supported_capabilities()
        and CAP_LOCAL_COPY in StagesWithoutFlush.supported_capabilities()
    )


@needs_syncfs
def test_a_sync_stages_and_records_only_after_the_batch_is_durable(
    sqlite_studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio = sqlite_studio
    store = studio.client.store
    frames = [studio.studio_file(f"show/sh070/f.{i}.exr", size=3000 + i) for i in range(12)]
    rep = studio.publish(frames, site="studio", product="plate", name="exr")
    studio.client.download(rep)
    seen_at_syncfs: list[tuple[int, set[str]]] = []
    real = local_drive.syncfs
    folder = studio.local_path("show/sh070/f.0.exr").parent

    def watching(fd: int) -> None:
        rows = store.replicas_for_files([f.id for f in store.files_of(rep)])
        on_disk = sum(1 for p in folder.glob("f.*.exr")) if folder.exists() else 0
        seen_at_syncfs.append((on_disk, {r.status for rs in rows.values() for r in rs if r.site == SITE_ID}))
        real(fd)

    monkeypatch.setattr(local_drive, "syncfs", watching)
    report = studio.sync()
    assert report.transferred == 12
    assert seen_at_syncfs, "the transfers were not staged"
    assert seen_at_syncfs[0] == (0, {"in_progress"}), "renamed or recorded before the batch was durable"
    for frame in frames:
        assert studio.local_path(f"show/sh070/{Path(frame).name}").read_bytes() == Path(frame).read_bytes()
    assert _temps(folder) == []


@needs_syncfs
def test_a_file_put_at_the_target_while_staged_is_never_replaced(tmp_path: Path) -> None:
    """The transfer looked at the target before it wrote; a file that appears there (or replaces what
    was there) before the batch's rename is someone else's: it stays, and the copy fails."""
    provider = _provider(tmp_path / "site")
    folder = tmp_path / "site" / "seq"
    folder.mkdir(parents=True)
    (folder / "replaced.bin").write_bytes(b"the copy sitesync saw")
    (folder / "kept.bin").write_bytes(b"the copy sitesync saw")
    for name in ("appeared.bin", "replaced.bin", "kept.bin", "new.bin"):
        provider.write_local(
            str(folder / name),
            _source(tmp_path, name, b"new " + name.encode()),
            4 + len(name),
            lambda s: None,
            staged=True,
        )
    (folder / "appeared.bin").write_bytes(b"an artist's file")
    (folder / "other.tmp").write_bytes(b"an artist's file")
    os.replace(folder / "other.tmp", folder / "replaced.bin")

    failures = provider.flush()
    assert sorted(failures) == [str(folder / "appeared.bin"), str(folder / "replaced.bin")]
    assert all(isinstance(e, TargetOccupiedError) and "will not replace it" in str(e) for e in failures.values())
    assert (folder / "appeared.bin").read_bytes() == b"an artist's file"
    assert (folder / "replaced.bin").read_bytes() == b"an artist's file"
    assert (folder / "kept.bin").read_bytes() == b"new kept.bin", "the copy sitesync saw there is replaced"
    assert (folder / "new.bin").read_bytes() == b"new new.bin"
    assert _temps(folder) == []


@needs_syncfs
def test_a_sync_fails_only_the_copy_whose_target_was_taken_while_it_waited(sqlite_studio: Studio) -> None:
    studio = sqlite_studio
    vault = studio.root / "vault"

    class ArtistMeanwhile(LocalDriveProvider):
        """Staged writes as local_drive's; an artist saves a file at one target before the commit."""

        name = "artist_meanwhile"

        def flush(self) -> dict[str, Exception]:
            target = vault / "show" / "sh080" / "f.1.exr"
            if self._staged and not target.exists():
                target.write_bytes(b"an artist's file")
            return super().flush()

    registry.register("artist_meanwhile", ArtistMeanwhile)
    try:
        studio.client.add_site("vault", "artist_meanwhile", [f"work={vault}"], {"create_roots": True})
        frames = [studio.studio_file(f"show/sh080/f.{i}.exr", size=700 + i) for i in range(3)]
        rep = studio.publish(frames, site="studio", product="plate", name="exr")
        studio.client.download(rep, site="vault")
        report = studio.sync()
    finally:
        registry.unregister("artist_meanwhile")
    assert (vault / "show" / "sh080" / "f.1.exr").read_bytes() == b"an artist's file"
    detail = studio.client.status(representation=rep)
    states = {f["path"].rsplit("/", 1)[-1]: r for f in detail["files"] for r in f["replicas"] if r["site"] == "vault"}
    assert states["f.0.exr"]["status"] == "present" and states["f.2.exr"]["status"] == "present"
    assert states["f.1.exr"]["status"] == "failed"
    assert "will not replace it" in (states["f.1.exr"]["last_error"] or "")
    assert report.transferred == 2
    assert report.failed_attempts == 1, (
        "the provider's verdict (never replace it) was not kept: retried as a storage error"
    )
