"""The provider contract suite: one set of checks every provider must pass.

The test suite runs it against every built-in provider (``tests/test_provider_contract.py``) and
``sitesync site test NAME`` runs it against a user's real site, in a scratch folder it removes
afterwards. Each check gets a provider and a scratch base location (provider namespace) and raises
``AssertionError`` with a readable message when the provider breaks the contract.

Known gaps are declared by the provider class in ``conformance_skips`` (name -> reason), in the
spirit of rclone's fstests: explicit, with the reason, never silent.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sitesync.errors import StorageError, VerificationError
from sitesync.hashing import HashingReader, new_hasher
from sitesync.providers.base import Provider

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    seconds: float
    detail: str = ""
    skipped: bool = False


def _join(base: str, *parts: str) -> str:
    sep = "\\" if ("\\" in base and "/" not in base) else "/"
    return base.rstrip("/\\") + sep + sep.join(parts)


def _write_bytes(p: Provider, path: str, data: bytes, check: Callable[[], None] | None = None) -> None:
    p.write(path, io.BytesIO(data), len(data), check or (lambda: None))


def _read_all(p: Provider, path: str) -> bytes:
    with p.open_read(path) as fh:
        chunks = []
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# ---------------------------------------------------------------------- checks


def check_reachable(p: Provider, base: str) -> None:
    p.check()


def check_stat_missing(p: Provider, base: str) -> None:
    assert p.stat(_join(base, "missing", "nothing.bin")) is None, "stat of a missing file must return None"


def check_write_read_roundtrip(p: Provider, base: str) -> None:
    data = os.urandom(300_000)
    path = _join(base, "a", "b", "roundtrip.bin")
    _write_bytes(p, path, data)
    entry = p.stat(path)
    assert entry is not None, "stat after write returned None"
    assert entry.size == len(data), f"stat size {entry.size} != written {len(data)}"
    assert _read_all(p, path) == data, "read back different bytes"


def check_empty_file(p: Provider, base: str) -> None:
    path = _join(base, "empty.bin")
    _write_bytes(p, path, b"")
    entry = p.stat(path)
    assert entry is not None and entry.size == 0, "a 0-byte file must exist with size 0"
    assert _read_all(p, path) == b""


def check_large_multi_chunk(p: Provider, base: str) -> None:
    size = 9 * 1024 * 1024 + 123
    data = os.urandom(size)
    path = _join(base, "large.bin")
    _write_bytes(p, path, data)
    hasher = new_hasher()
    hasher.update(_read_all(p, path))
    expected = new_hasher()
    expected.update(data)
    assert hasher.hexdigest() == expected.hexdigest(), "large file content differs after a round trip"


def check_overwrite(p: Provider, base: str) -> None:
    path = _join(base, "over.bin")
    _write_bytes(p, path, b"first version, longer than the second")
    _write_bytes(p, path, b"second")
    assert _read_all(p, path) == b"second", "writing over an existing file must replace it entirely"


def check_commit_check_rejects(p: Provider, base: str) -> None:
    path = _join(base, "rejected.bin")

    def refuse() -> None:
        raise VerificationError("refused by the test")

    try:
        _write_bytes(p, path, b"must never be visible", refuse)
    except VerificationError:
        pass
    else:
        raise AssertionError("write must re-raise the commit_check error")
    assert p.stat(path) is None, "a rejected write left a file under the final name"
    leftovers = [e.path for e in p.list(base) if "rejected" in e.path]
    assert not leftovers, f"a rejected write left files behind: {leftovers}"


def check_rejected_keeps_previous(p: Provider, base: str) -> None:
    path = _join(base, "keep.bin")
    _write_bytes(p, path, b"good content")

    def refuse() -> None:
        raise VerificationError("refused by the test")

    with contextlib.suppress(VerificationError):
        _write_bytes(p, path, b"bad content that must not replace the good", refuse)
    assert _read_all(p, path) == b"good content", "a rejected write damaged the previous file"


def check_atomic_visibility(p: Provider, base: str) -> None:
    """While a write is streaming, nothing is visible under the final name."""
    path = _join(base, "atomic.bin")
    seen: list[object] = []
    gate = threading.Event()

    class SlowStream(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: WriteableBuffer) -> int:
            buf = memoryview(buffer).cast("B")
            if self.sent >= 2 * 1024 * 1024:
                return 0
            if self.sent >= 1024 * 1024 and not gate.is_set():
                seen.append(p.stat(path))
                gate.set()
            n = min(len(buf), 256 * 1024, 2 * 1024 * 1024 - self.sent)
            buf[:n] = b"x" * n
            self.sent += n
            return n

    stream = SlowStream()
    p.write(path, io.BufferedReader(stream), 2 * 1024 * 1024, lambda: None)
    assert gate.is_set(), "the provider did not read the stream"
    assert seen == [None], "the file was visible under its final name before the write finished"
    entry = p.stat(path)
    assert entry is not None and entry.size == 2 * 1024 * 1024


def check_names(p: Provider, base: str) -> None:
    """Quotes, spaces, dots, unicode, no extension, dotted folders."""
    names = [
        ("v001.final", "shot 010's take.exr"),
        ("noext", "README"),
        ("ünïcødé", "日本語ファイル.txt"),
        ("dots", "a.b.c.d"),
    ]
    for folder, name in names:
        path = _join(base, "names", folder, name)
        data = f"{folder}/{name}".encode()
        _write_bytes(p, path, data)
        assert _read_all(p, path) == data, f"round trip failed for {folder}/{name}"
    listed = sorted(e.path for e in p.list(_join(base, "names")))
    assert len(listed) == len(names), f"listing found {len(listed)} files, expected {len(names)}: {listed}"


def check_list(p: Provider, base: str) -> None:
    folder = _join(base, "listing")
    for rel in ("one.bin", "sub/two.bin", "sub/deeper/three.bin"):
        _write_bytes(p, _join(folder, *rel.split("/")), rel.encode())
    entries = {e.path: e for e in p.list(folder)}
    assert len(entries) == 3, f"list must return every file below the prefix, got {sorted(entries)}"
    for e in entries.values():
        assert e.size > 0
    assert list(p.list(_join(base, "no-such-folder"))) == [], "listing a missing folder must be empty"


def check_delete(p: Provider, base: str) -> None:
    path = _join(base, "del", "gone.bin")
    _write_bytes(p, path, b"bye")
    p.delete(path)
    assert p.stat(path) is None, "file still there after delete"
    p.delete(path)  # idempotent
    p.delete(_join(base, "del", "never-existed.bin"))


def check_read_missing_raises(p: Provider, base: str) -> None:
    try:
        p.open_read(_join(base, "missing.bin")).close()
    except StorageError:
        return
    raise AssertionError("open_read of a missing file must raise a StorageError")


def check_concurrent_writes(p: Provider, base: str) -> None:
    """Several threads writing different files at once (workers share one provider)."""
    errors: list[BaseException] = []
    payloads = {f"c{i}.bin": os.urandom(50_000 + i) for i in range(8)}

    def one(name: str, data: bytes) -> None:
        try:
            _write_bytes(p, _join(base, "concurrent", name), data)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=item) for item in payloads.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, f"concurrent writes failed: {errors[0]!r}"
    for name, data in payloads.items():
        assert _read_all(p, _join(base, "concurrent", name)) == data


def check_streamed_hash(p: Provider, base: str) -> None:
    """The transfer layer's HashingReader works as the write stream (readinto and read paths)."""
    data = os.urandom(3 * 1024 * 1024 + 7)
    expected = new_hasher()
    expected.update(data)
    reader = HashingReader(io.BytesIO(data))
    path = _join(base, "hashed.bin")
    p.write(path, reader, len(data), lambda: None)
    reader.drain()
    assert reader.hexdigest() == expected.hexdigest(), "provider did not consume the whole stream"


class SourceFailed(Exception):
    """Raised by a test stream; the provider must let it through unchanged."""


def check_source_error_passes_through(p: Provider, base: str) -> None:
    """An error of the source stream (a failing disk, a cancelled transfer) reaches the caller
    unchanged, and nothing is left behind."""
    path = _join(base, "source-error.bin")

    class FailingStream(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: WriteableBuffer) -> int:
            buf = memoryview(buffer).cast("B")
            if self.sent >= 1024 * 1024:
                raise SourceFailed("the source broke")
            n = min(len(buf), 64 * 1024)
            buf[:n] = b"s" * n
            self.sent += n
            return n

    try:
        p.write(path, io.BufferedReader(FailingStream()), 2 * 1024 * 1024, lambda: None)
    except SourceFailed:
        pass
    except Exception as exc:
        raise AssertionError(f"the source's error came back as {type(exc).__name__}: {exc}") from None
    else:
        raise AssertionError("write succeeded although its source failed")
    assert p.stat(path) is None, "a write whose source failed left a file under the final name"
    leftovers = [e.path for e in p.list(base) if "source-error" in e.path]
    assert not leftovers, f"a write whose source failed left files behind: {leftovers}"


CHECKS: dict[str, Callable[[Provider, str], None]] = {
    "reachable": check_reachable,
    "stat_missing": check_stat_missing,
    "write_read_roundtrip": check_write_read_roundtrip,
    "empty_file": check_empty_file,
    "large_multi_chunk": check_large_multi_chunk,
    "overwrite": check_overwrite,
    "commit_check_rejects": check_commit_check_rejects,
    "rejected_keeps_previous": check_rejected_keeps_previous,
    "atomic_visibility": check_atomic_visibility,
    "names": check_names,
    "list": check_list,
    "delete": check_delete,
    "read_missing_raises": check_read_missing_raises,
    "concurrent_writes": check_concurrent_writes,
    "streamed_hash": check_streamed_hash,
    "source_error_passes_through": check_source_error_passes_through,
}


def scratch_base(root_base: str) -> str:
    return _join(root_base, f".sitesync-test-{secrets.token_hex(4)}")


def cleanup(p: Provider, base: str) -> None:
    for entry in list(p.list(base)):
        p.delete(entry.path)


def run_conformance(p: Provider, root_base: str, only: list[str] | None = None) -> list[CheckResult]:
    """Run every check in a fresh scratch folder below ``root_base`` and remove it afterwards."""
    base = scratch_base(root_base)
    skips: dict[str, str] = getattr(type(p), "conformance_skips", {})
    results = []
    unreachable = False
    try:
        for name, check in CHECKS.items():
            if only and name not in only:
                continue
            if unreachable:  # every other check would fail the same way, slowly
                results.append(CheckResult(name, False, 0.0, "not run: the site is not reachable"))
                continue
            if name in skips:
                results.append(CheckResult(name, True, 0.0, skips[name], skipped=True))
                continue
            started = time.monotonic()
            try:
                check(p, base)
            except AssertionError as exc:
                results.append(CheckResult(name, False, time.monotonic() - started, str(exc) or "assertion failed"))
            except Exception as exc:
                results.append(CheckResult(name, False, time.monotonic() - started, f"{type(exc).__name__}: {exc}"))
                unreachable = name == "reachable"
            else:
                results.append(CheckResult(name, True, time.monotonic() - started))
    finally:
        if not unreachable:  # nothing was written to an unreachable site
            with contextlib.suppress(Exception):  # a failed cleanup never hides the results
                cleanup(p, base)
    return results
