"""local_drive to local_drive transfers: the kernel copy path (copy_file_range) and its proof, the
folder memo, and the batched folder fsync. A copy is verified by reading back the temporary file;
a damaged source is refused and nothing partial or unverified ever appears under the final name."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from sitesync.errors import VerificationError
from sitesync.hashing import hash_file
from sitesync.providers import registry
from sitesync.providers.base import CAP_LOCAL_COPY
from sitesync.providers.local_drive import LocalDriveProvider
from tests.conftest import SITE_ID, Studio


def _states(studio: Studio, rep: int, site: str) -> list[tuple[str, str | None]]:
    detail = studio.client.status(representation=rep)
    return [(r["status"], r["last_error"]) for f in detail["files"] for r in f["replicas"] if r["site"] == site]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".sitesync-*")) if folder.exists() else []


def test_local_copy_uses_the_kernel_and_is_verified(sqlite_studio: Studio, monkeypatch: pytest.MonkeyPatch) -> None:
    studio = sqlite_studio
    frames = [studio.studio_file(f"show/sh010/plate/f.{1001 + i}.exr", size=300_000 + i) for i in range(5)]
    rep = studio.publish(frames, site="studio", product="plate", name="exr")
    studio.client.download(rep)
    calls: list[int] = []
    real = os.copy_file_range

    def counting(src: int, dst: int, count: int, *args: object) -> int:
        calls.append(count)
        return real(src, dst, count, *args)

    monkeypatch.setattr(os, "copy_file_range", counting)
    report = studio.sync()
    assert report.transferred == 5 and report.failed_attempts == 0
    assert len(calls) >= 10, "each file is copied in the kernel (and its end seen)"
    for i, src in enumerate(frames):
        local = studio.local_path(f"show/sh010/plate/f.{1001 + i}.exr")
        assert hash_file(str(local)) == hash_file(str(src))
    assert _states(studio, rep, SITE_ID) == [("present", None)] * 5
    assert _temps(studio.local_path("show/sh010/plate")) == []


@pytest.mark.parametrize("damage", ["flipped", "grown", "shrunk"])
def test_a_damaged_source_is_refused_on_the_kernel_path(sqlite_studio: Studio, damage: str) -> None:
    studio = sqlite_studio
    good = studio.studio_file("show/sh020/cache/a.abc", size=2 * 1024 * 1024 + 17)
    other = studio.studio_file("show/sh020/cache/b.abc", size=4096)
    rep = studio.publish([good, other], site="studio", product="cache", name="abc")
    data = bytearray(good.read_bytes())
    if damage == "flipped":
        data[1_000_000] ^= 0xFF  # same size, different content
    elif damage == "grown":
        data += b"tail"
    else:
        del data[-1]
    good.write_bytes(bytes(data))
    studio.client.download(rep)
    report = studio.sync()
    # the damaged source is recorded lost at once (issue 12): the download waits for a source
    # instead of spending its attempts on a copy that can never verify
    assert report.transferred == 1 and report.failed_attempts == 0
    final = studio.local_path("show/sh020/cache/a.abc")
    assert not final.exists(), "a copy that does not match the catalog appeared under its final name"
    assert studio.local_path("show/sh020/cache/b.abc").read_bytes() == other.read_bytes()
    assert _temps(final.parent) == [], "the rejected temporary file was left behind"
    assert sorted(s for s, _ in _states(studio, rep, SITE_ID)) == ["no_source", "present"]
    lost = [e for s, e in _states(studio, rep, "studio") if s == "missing"]
    assert lost and "the copy on studio is not the catalog's content" in lost[0]


def test_kernel_copy_refused_falls_back_to_a_buffered_copy(
    sqlite_studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio = sqlite_studio
    src = studio.studio_file("show/sh030/f.bin", size=3 * 1024 * 1024 + 5)
    rep = studio.publish([src], site="studio", product="p", name="bin")
    studio.client.download(rep)

    def cross_device(*_args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", cross_device)
    report = studio.sync()
    assert report.transferred == 1 and report.failed_attempts == 0
    assert studio.local_path("show/sh030/f.bin").read_bytes() == src.read_bytes()


def _provider(root: Path) -> LocalDriveProvider:
    root.mkdir(parents=True, exist_ok=True)
    provider = LocalDriveProvider.from_options("t", {}, {"work": str(root)})
    assert isinstance(provider, LocalDriveProvider)
    return provider


def test_write_local_rejection_and_cancellation_leave_nothing(tmp_path: Path) -> None:
    provider = _provider(tmp_path / "site")
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    final = tmp_path / "site" / "a" / "f.bin"
    final.parent.mkdir(parents=True)
    final.write_bytes(b"the previous good copy")
    seen: list[bytes] = []

    def reject(stored) -> None:
        seen.append(stored.read())
        raise VerificationError("does not match")

    with pytest.raises(VerificationError):
        provider.write_local(str(final), str(source), source.stat().st_size, reject)
    assert seen == [source.read_bytes()], "verify reads the stored copy from its start to its end"
    assert final.read_bytes() == b"the previous good copy"

    class Cancelled(Exception):
        pass

    def cancel(_n: int) -> None:
        raise Cancelled()

    with pytest.raises(Cancelled):
        provider.write_local(str(final), str(source), source.stat().st_size, lambda s: None, cancel)
    assert final.read_bytes() == b"the previous good copy"
    assert _temps(final.parent) == []

    entry = provider.write_local(str(final), str(source), source.stat().st_size, lambda s: None)
    assert entry.size == source.stat().st_size and final.read_bytes() == source.read_bytes()


def test_a_subclass_that_changes_write_keeps_its_write() -> None:
    class Custom(LocalDriveProvider):
        def write(self, path, stream, size, commit_check):
            raise RuntimeError("custom")

    class Both(Custom):
        def write_local(self, path, source, size, verify, on_bytes=None):
            raise RuntimeError("custom too")

    assert CAP_LOCAL_COPY in LocalDriveProvider.supported_capabilities()
    assert CAP_LOCAL_COPY not in Custom.supported_capabilities()
    assert CAP_LOCAL_COPY in Both.supported_capabilities()


def test_stale_temporaries_of_the_target_are_removed_and_folders_recreated(tmp_path: Path) -> None:
    provider = _provider(tmp_path / "site")
    folder = tmp_path / "site" / "seq"
    folder.mkdir()
    crashed = folder / ".sitesync-f.bin.deadbeef.part"
    crashed.write_bytes(b"half a frame")
    someone_elses = folder / ".sitesync-g.bin.cafecafe.part"
    someone_elses.write_bytes(b"being written by another worker")
    source = tmp_path / "src.bin"
    source.write_bytes(b"frame")

    provider.write_local(str(folder / "f.bin"), str(source), 5, lambda s: None)
    assert not crashed.exists(), "the crashed writer's temporary file of this target was not removed"
    assert someone_elses.exists(), "another target's temporary file must be left alone"

    shutil.rmtree(folder)  # removed behind the provider's back after it remembered the folder
    provider.write_local(str(folder / "f2.bin"), str(source), 5, lambda s: None)
    assert (folder / "f2.bin").read_bytes() == b"frame"


def test_folders_are_fsynced_by_flush_before_outcomes_are_recorded(
    sqlite_studio: Studio, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio = sqlite_studio
    store = studio.client.store
    statuses_at_flush: list[set[str]] = []

    class Recording(LocalDriveProvider):
        name = "recording"

        def flush(self) -> None:
            rows = store.replicas_for_files([f.id for f in store.files_of(rep)])
            statuses_at_flush.append({r.status for rs in rows.values() for r in rs if r.site == "vault"})
            super().flush()

    fsynced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    registry.register("recording", Recording)
    try:
        vault = studio.root / "vault"
        # one rename per file (staged writes, the default, are tested in test_staged_writes.py)
        options = {"create_roots": True, "disable_capabilities": ["staged_write"]}
        studio.client.add_site("vault", "recording", [f"work={vault}"], options)
        frames = [studio.studio_file(f"show/sh040/f.{i}.exr", size=1000 + i) for i in range(4)]
        rep = studio.publish(frames, site="studio", product="plate", name="exr")
        studio.client.download(rep, site="vault")
        monkeypatch.setattr(os, "fsync", recording_fsync)
        report = studio.sync()
    finally:
        registry.unregister("recording")
    assert report.transferred == 4
    assert statuses_at_flush and statuses_at_flush[0] == {"in_progress"}, "flushed only after recording"
    folder = str(vault / "show" / "sh040")
    assert folder in fsynced, "the folder holding the new names was not fsynced"
    # once per outcome batch, not once per file: usually one batch, more when a slow machine lets
    # the worker's flush interval (0.25 s) pass between copies
    assert fsynced.count(folder) == len(statuses_at_flush), "the folder is fsynced once per batch, not once per file"
    assert sum(1 for p in fsynced if p.startswith(folder + "/.sitesync-")) == 4, "each file is fsynced"


def test_sync_once_finishes_the_queue_when_transfers_outrun_the_claims(sqlite_studio: Studio) -> None:
    """Regression: a worker that did not look for work in a step (enough in flight) and then saw
    every transfer finish at once took the empty pool for an empty queue and stopped early."""
    studio = sqlite_studio
    studio.client.settings_set("sites.local.options.fsync", False, project="show")  # fast transfers
    frames = [studio.studio_file(f"show/sh050/f.{i:04d}.exr", data=b"%d" % i) for i in range(1500)]
    rep = studio.publish(frames, site="studio", product="plate", name="exr")
    studio.client.download(rep)
    report = studio.sync(batch_size=64)
    assert report.transferred == 1500, f"sync --once stopped with {1500 - report.transferred} files still queued"
    assert _states(studio, rep, SITE_ID) == [("present", None)] * 1500


def test_a_target_that_cannot_flush_fails_only_its_own_copies(sqlite_studio: Studio) -> None:
    studio = sqlite_studio

    class BrokenFlush(LocalDriveProvider):
        name = "broken_flush"

        def flush(self) -> None:
            raise RuntimeError("fsync of folders not possible here")

    registry.register("broken_flush", BrokenFlush)
    try:
        studio.client.add_site("vault", "broken_flush", [f"work={studio.root / 'vault'}"], {"create_roots": True})
        frames = [studio.studio_file(f"show/sh060/f.{i}.exr", size=500 + i) for i in range(3)]
        rep = studio.publish(frames, site="studio", product="plate", name="exr")
        studio.client.download(rep)
        studio.client.download(rep, site="vault")
        report = studio.sync()
    finally:
        registry.unregister("broken_flush")
    assert _states(studio, rep, SITE_ID) == [("present", None)] * 3, "the healthy target's copies were held back"
    vault = _states(studio, rep, "vault")
    assert [s for s, _ in vault] == ["failed"] * 3
    assert all(
        "could not be made durable: RuntimeError: fsync of folders not possible here" in (e or "") for _, e in vault
    )
    assert report.transferred == 3 and report.failed_attempts == 9  # 3 files x retry_count 3
