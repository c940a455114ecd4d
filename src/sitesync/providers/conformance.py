"""The provider contract suite: one set of checks every provider must pass.

The test suite runs it against every built-in provider (``tests/test_provider_contract.py``),
provider authors run it in their own pytest suite with ``sitesync.testing.provider_conformance_tests``,
and ``sitesync site test NAME`` runs it against a user's real site, in a scratch folder it removes
afterwards. Each check gets a provider and a scratch base location (provider namespace) and raises
``AssertionError`` with a readable message when the provider breaks the contract.

Known gaps are declared by the provider class in ``conformance_skips`` (name -> reason), in the
spirit of rclone's fstests: explicit, with the reason, never silent. The items of an optional
capability (``local_path``, ``local_copy``, ``staged_write``, ``usage``) run where the provider has
it on this site and are reported as skipped, with that reason, where it has not.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from sitesync.errors import NotSupportedError, StorageError, VerificationError
from sitesync.hashing import HashingReader, new_hasher
from sitesync.providers.base import Capability, Provider, Usage

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
    """check() passes: the site is reachable and the credentials are accepted."""
    p.check()


def check_stat_missing(p: Provider, base: str) -> None:
    """stat() of a file that does not exist returns None (not an error)."""
    assert p.stat(_join(base, "missing", "nothing.bin")) is None, "stat of a missing file must return None"


def check_write_read_roundtrip(p: Provider, base: str) -> None:
    """A written file is found by stat() with its size and reads back byte for byte."""
    data = os.urandom(300_000)
    path = _join(base, "a", "b", "roundtrip.bin")
    _write_bytes(p, path, data)
    entry = p.stat(path)
    assert entry is not None, "stat after write returned None"
    assert entry.size == len(data), f"stat size {entry.size} != written {len(data)}"
    assert _read_all(p, path) == data, "read back different bytes"


def check_empty_file(p: Provider, base: str) -> None:
    """A 0-byte file can be written, exists with size 0 and reads back empty."""
    path = _join(base, "empty.bin")
    _write_bytes(p, path, b"")
    entry = p.stat(path)
    assert entry is not None and entry.size == 0, "a 0-byte file must exist with size 0"
    assert _read_all(p, path) == b""


def check_large_multi_chunk(p: Provider, base: str) -> None:
    """A file of several chunks (9 MiB) survives a round trip unchanged."""
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
    """Writing over an existing file replaces it entirely (a shorter file leaves no tail)."""
    path = _join(base, "over.bin")
    _write_bytes(p, path, b"first version, longer than the second")
    _write_bytes(p, path, b"second")
    assert _read_all(p, path) == b"second", "writing over an existing file must replace it entirely"


def check_commit_check_rejects(p: Provider, base: str) -> None:
    """A write whose commit_check raises re-raises it and leaves nothing, under any name."""
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
    """A rejected write over an existing file leaves the previous file untouched."""
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
    """Names with quotes, spaces, dots, unicode, no extension, in dotted folders: round trip and listing."""
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
    """list() returns every file below a folder, recursively, and nothing for a missing folder."""
    folder = _join(base, "listing")
    for rel in ("one.bin", "sub/two.bin", "sub/deeper/three.bin"):
        _write_bytes(p, _join(folder, *rel.split("/")), rel.encode())
    entries = {e.path: e for e in p.list(folder)}
    assert len(entries) == 3, f"list must return every file below the prefix, got {sorted(entries)}"
    for e in entries.values():
        assert e.size > 0
    assert list(p.list(_join(base, "no-such-folder"))) == [], "listing a missing folder must be empty"


def check_walk_stats(p: Provider, base: str) -> None:
    """``walk_stats`` (workfile change detection) finds every file with paths relative to the
    folder, skips pruned folders, and agrees with ``stat_exact``."""
    folder = _join(base, "walk")
    rels = ("one.bin", "sub/two.bin", "sub/deeper/three.bin")
    for rel in rels:
        _write_bytes(p, _join(folder, *rel.split("/")), rel.encode())
    walked = {e.path: e for e in p.walk_stats(folder)}
    assert sorted(walked) == sorted(rels), (
        f"walk_stats must give every file relative to the folder, got {sorted(walked)}"
    )
    for rel, entry in walked.items():
        assert entry.size == len(rel.encode()) and not entry.is_symlink, f"wrong facts for {rel}: {entry}"
        exact = p.stat_exact(_join(folder, *rel.split("/")))
        assert exact is not None and exact.size == entry.size, f"stat_exact of {rel}: {exact}, walked {entry}"
        assert p.stat_exact(_join(folder, *rel.split("/"))) == exact, "two looks at an unchanged file differ"
        if Capability.LOCAL_PATH in p.capabilities:
            assert (exact.mtime_ns, exact.file_id) == (entry.mtime_ns, entry.file_id), (
                f"stat_exact {exact} disagrees with walk_stats {entry}: every unchanged file would look changed"
            )
    pruned = sorted(e.path for e in p.walk_stats(folder, lambda d: d == "sub"))
    assert pruned == ["one.bin"], f"a pruned folder must not be walked, got {pruned}"
    assert p.stat_exact(_join(folder, "no-such.bin")) is None
    assert list(p.walk_stats(_join(base, "no-such-folder"))) == [], "walking a missing folder must be empty"


def check_delete(p: Provider, base: str) -> None:
    """delete() removes a file; deleting it again, or a file that never existed, is not an error."""
    path = _join(base, "del", "gone.bin")
    _write_bytes(p, path, b"bye")
    p.delete(path)
    assert p.stat(path) is None, "file still there after delete"
    p.delete(path)  # idempotent
    p.delete(_join(base, "del", "never-existed.bin"))


def check_read_missing_raises(p: Provider, base: str) -> None:
    """open_read() of a missing file raises a sitesync StorageError."""
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


class NotApplicable(Exception):
    """Raised by a check that does not apply to this provider (an optional capability it has not)."""


def _needs(p: Provider, capability: Capability) -> None:
    if capability not in p.capabilities:
        why = "switched off on this site" if capability in p.supported_capabilities() else "not implemented"
        raise NotApplicable(f"no {capability} capability ({why})")


@contextlib.contextmanager
def _local_source(data: bytes) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="sitesync-conformance-") as folder:
        path = os.path.join(folder, "source.bin")
        with open(path, "wb") as fh:
            fh.write(data)
        yield path


def _read_to_end(stored: BinaryIO) -> bytes:
    chunks = []
    while chunk := stored.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def check_local_path(p: Provider, base: str) -> None:
    """With local_path: local_path() of a written file is an OS path holding its bytes."""
    _needs(p, Capability.LOCAL_PATH)
    data = os.urandom(10_000)
    path = _join(base, "local-path", "file.bin")
    _write_bytes(p, path, data)
    local = p.local_path(path)
    assert local is not None, "local_path() of a written file returned None"
    with open(local, "rb") as fh:
        assert fh.read() == data, "the file at local_path() holds other bytes"


def check_local_copy(p: Provider, base: str) -> None:
    """With local_copy: write_local() copies a local file, hands verify() the stored copy from its
    start, and leaves nothing when verify() refuses it."""
    _needs(p, Capability.LOCAL_COPY)
    data = os.urandom(300_000)
    path, refused = _join(base, "local-copy", "copied.bin"), _join(base, "local-copy", "refused.bin")
    seen: list[bytes] = []

    def refuse(stored: BinaryIO) -> None:
        _read_to_end(stored)
        raise VerificationError("refused by the test")

    with _local_source(data) as source:
        try:
            entry = p.write_local(path, source, len(data), lambda stored: seen.append(_read_to_end(stored)))
        except NotSupportedError as exc:
            raise NotApplicable(f"write_local answered NotSupportedError for a local file: {exc}") from None
        assert seen == [data], "verify() must get the stored copy, read from its start to its end"
        assert entry.size == len(data) and _read_all(p, path) == data, "the copy differs from its source"
        try:
            p.write_local(refused, source, len(data), refuse)
        except VerificationError:
            pass
        else:
            raise AssertionError("write_local must re-raise the error of verify()")
    assert p.stat(refused) is None, "a refused local copy is visible under the final name"
    leftovers = [e.path for e in p.list(base) if "refused" in e.path]
    assert not leftovers, f"a refused local copy left files behind: {leftovers}"


def check_staged_write(p: Provider, base: str) -> None:
    """With staged_write: a staged local copy is under its final name after flush(), with its bytes."""
    _needs(p, Capability.STAGED_WRITE)
    data = os.urandom(50_000)
    path = _join(base, "staged", "copied.bin")
    seen: list[int] = []
    with _local_source(data) as source:
        entry = p.write_local(
            path, source, len(data), lambda stored: seen.append(len(_read_to_end(stored))), staged=True
        )
    assert seen == [len(data)], "verify() must get the stored copy, read from its start to its end"
    assert entry.size == len(data), "the entry of a staged copy must describe it as it will be"
    failures = p.flush()
    assert failures == {}, f"flush() could not commit the staged copy: {failures}"
    assert _read_all(p, path) == data, "after flush() the staged copy is not under its final name"


def check_usage(p: Provider, base: str) -> None:
    """With usage: usage() tells free and total bytes (or None where it cannot), free <= total."""
    _needs(p, Capability.USAGE)
    usage = p.usage()
    if usage is None:
        return
    assert isinstance(usage, Usage), f"usage() must return a Usage or None, not {type(usage).__name__}"
    for value in (usage.free, usage.total):
        assert value is None or (isinstance(value, int) and value >= 0), f"bad usage numbers: {usage}"
    if usage.free is not None and usage.total is not None:
        assert usage.free <= usage.total, f"more free than total space: {usage}"


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
    "walk_stats": check_walk_stats,
    "delete": check_delete,
    "read_missing_raises": check_read_missing_raises,
    "concurrent_writes": check_concurrent_writes,
    "streamed_hash": check_streamed_hash,
    "source_error_passes_through": check_source_error_passes_through,
    # optional capabilities: skipped (with the reason) where the provider has not got one
    "local_path": check_local_path,
    "local_copy": check_local_copy,
    "staged_write": check_staged_write,
    "usage": check_usage,
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
            except NotApplicable as exc:
                results.append(CheckResult(name, True, time.monotonic() - started, str(exc), skipped=True))
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
