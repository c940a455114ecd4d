"""The checked replacement of a workfile (``workfiles/placing.py``) on real local storage: the
target must still hold exactly what sitesync last put or saw there *at the moment of replacing* —
an artist saving while an incoming version streams in keeps their file — and a SIGKILL during an
incoming replacement leaves the old or the new content, never a partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from sitesync.errors import VerificationError
from sitesync.hashing import hash_file
from sitesync.identity.markers import marker_location
from sitesync.providers.local_drive import LocalDriveProvider, is_temp_name
from sitesync.providers.registry import provider_class
from sitesync.workfiles.placing import ChangedUnderUs, place, remove_checked
from tests.workfilekit import PROJECT, SCENE, workstations


class _CallbackAtEnd:
    """A source stream that runs ``at_end`` once the last byte was read (an artist saving the
    target while the incoming version was streaming)."""

    def __init__(self, raw: BinaryIO, at_end: Any) -> None:
        self.raw, self.at_end, self.fired = raw, at_end, False

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        if not data and not self.fired:
            self.fired = True
            self.at_end()
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> _CallbackAtEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _SaveDuringRead(LocalDriveProvider):
    at_end: Any = None

    def open_read(self, path: str) -> BinaryIO:
        return _CallbackAtEnd(super().open_read(path), self.at_end)  # type: ignore[return-value]


def _providers(tmp_path: Path) -> tuple[_SaveDuringRead, LocalDriveProvider, Path, Path]:
    src_root, dst_root = tmp_path / "src", tmp_path / "dst"
    src_root.mkdir()
    dst_root.mkdir()
    config = provider_class("local_drive").Config.model_validate({})
    source = _SaveDuringRead("src", config, {"work": str(src_root)})
    target = LocalDriveProvider("dst", config, {"work": str(dst_root)})
    Path(marker_location(str(dst_root))).write_text("{}")  # the storage is mounted (see identity/)
    return source, target, src_root, dst_root


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if is_temp_name(p.name)] if folder.exists() else []


def test_an_artist_saving_during_the_transfer_keeps_their_file(tmp_path: Path) -> None:
    source, target, src_root, dst_root = _providers(tmp_path)
    (src_root / "scene.ma").write_bytes(b"incoming version" * 1000)
    old = dst_root / "scene.ma"
    old.write_bytes(b"the version sitesync put here")
    _size, old_hash = hash_file(str(old))
    size, new_hash = hash_file(str(src_root / "scene.ma"))
    source.at_end = lambda: old.write_bytes(b"the artist saved just now")

    with pytest.raises(ChangedUnderUs) as caught:
        place(source, str(src_root / "scene.ma"), target, str(old), size, new_hash, old_hash)
    assert source.at_end is not None and old.read_bytes() == b"the artist saved just now"
    assert caught.value.found_hash == hash_file(str(old))[1]
    assert _leftovers(dst_root) == []

    # unchanged: replaced; a file sitesync never recorded there: refused before anything is read
    source.at_end = lambda: None
    _size, seen = hash_file(str(old))
    assert place(source, str(src_root / "scene.ma"), target, str(old), size, new_hash, seen) == size
    assert old.read_bytes() == (src_root / "scene.ma").read_bytes()
    (dst_root / "other.ma").write_bytes(b"someone's file")
    with pytest.raises(ChangedUnderUs):
        place(source, str(src_root / "scene.ma"), target, str(dst_root / "other.ma"), size, new_hash, None)
    assert (dst_root / "other.ma").read_bytes() == b"someone's file"


def test_a_source_that_is_not_the_recorded_version_writes_nothing(tmp_path: Path) -> None:
    source, target, src_root, dst_root = _providers(tmp_path)
    source.at_end = lambda: None
    (src_root / "scene.ma").write_bytes(b"changed since it was recorded")
    with pytest.raises(VerificationError, match="not the recorded version"):
        place(source, str(src_root / "scene.ma"), target, str(dst_root / "scene.ma"), 29, "0" * 32, None)
    assert not (dst_root / "scene.ma").exists() and _leftovers(dst_root) == []


def test_a_recorded_deletion_deletes_only_the_content_it_was_asked_for(tmp_path: Path) -> None:
    _source, target, _src_root, dst_root = _providers(tmp_path)
    path = dst_root / "scene.ma"
    path.write_bytes(b"recorded")
    _size, recorded = hash_file(str(path))
    path.write_bytes(b"edited since")
    with pytest.raises(ChangedUnderUs):
        remove_checked(target, str(path), recorded)
    assert path.read_bytes() == b"edited since"
    path.write_bytes(b"recorded")
    assert remove_checked(target, str(path), recorded) and not path.exists()


def test_sigkill_during_an_incoming_replacement_leaves_old_or_new(tmp_path: Path, sqlite_url: str, home: Path) -> None:
    with workstations(tmp_path, sqlite_url) as ws:
        old = os.urandom(1024) * 1024 * 4  # 4 MiB
        ws.a.save(SCENE, old)
        ws.settle()
        new = os.urandom(1024) * 1024 * 96  # 96 MiB: the replacement takes a while
        ws.a.save(SCENE, new)
        ws.a.sync()
        folder = ws.b.path(SCENE).parent
        mid_write = False
        for _attempt in range(3):
            proc = subprocess.Popen(
                [sys.executable, "-m", "sitesync", "work", "sync", PROJECT],
                env=ws.b.env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if _leftovers(folder):
                    mid_write = True
                    break
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert ws.b.read(SCENE) in (old, new)  # never partial
            if mid_write:
                break
        assert mid_write, "the kill never landed during the write"
        assert ws.b.read(SCENE) == old
        # the killed process's lease expires; the next pass finishes the replacement
        with ws.b.client.store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE workfile_copies SET lease_expires_at = 0")
        result = ws.b.sync()
        assert not result.errors, result.errors
        assert ws.b.read(SCENE) == new
        assert [s.state for s in ws.b.client.work_status(PROJECT)] == ["in_sync"]
        assert ws.b.client.work_conflicts(PROJECT) == []
