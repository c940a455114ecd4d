"""One file from one site to another, proven: the bytes stream from the source through the hasher
into the target provider's atomic write, which commits only if size and hash match the catalog.
A mismatch raises ``VerificationError`` and leaves nothing under the final name.

When the source is a local file system (CAP_LOCAL_PATH) and the target can copy from one
(CAP_LOCAL_COPY: ``local_drive``), the target copies in the kernel and the hash is taken by reading
back what it wrote, before the file gets its final name: the proof covers the stored bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sitesync.errors import VerificationError
from sitesync.hashing import HashingReader, buffer_size_for
from sitesync.providers.base import CAP_LOCAL_COPY, CAP_LOCAL_PATH, Provider


@dataclass(frozen=True)
class Expected:
    size: int
    hash_algo: str
    hash: str


@dataclass(frozen=True)
class TransferResult:
    bytes: int
    duration: float
    ref: str | None


def _mismatch(src_site: str, src_path: str, expected: Expected, size: int, digest: str) -> VerificationError:
    if size != expected.size:
        detail = f"size {size} bytes, catalog says {expected.size}"
    else:
        detail = f"{expected.hash_algo} {digest[:16]}..., catalog says {expected.hash[:16]}..."
    return VerificationError(
        f"the copy of {src_path} on site {src_site} does not match the catalog ({detail}); "
        "it was changed or damaged after publish, nothing was written"
    )


def copy_verified(
    source: Provider,
    src_path: str,
    target: Provider,
    dst_path: str,
    expected: Expected,
    on_bytes: Callable[[int], None] | None = None,
) -> TransferResult:
    started = time.monotonic()
    local = source.local_path(src_path) if CAP_LOCAL_PATH in source.capabilities else None
    if local is not None and CAP_LOCAL_COPY in target.capabilities:
        return _copy_local(source, src_path, local, target, dst_path, expected, on_bytes, started)
    with source.open_read(src_path) as raw:
        reader = HashingReader(raw, expected.hash_algo, on_bytes)

        def commit_check() -> None:
            reader.drain()  # a source longer than the catalog says must fail, not be cut short
            digest = reader.hexdigest()
            if reader.bytes_read != expected.size or digest != expected.hash:
                raise _mismatch(source.site, src_path, expected, reader.bytes_read, digest)

        entry = target.write(dst_path, reader, expected.size, commit_check)
    return TransferResult(bytes=reader.bytes_read, duration=time.monotonic() - started, ref=entry.ref)


def _copy_local(
    source: Provider,
    src_path: str,
    local: str,
    target: Provider,
    dst_path: str,
    expected: Expected,
    on_bytes: Callable[[int], None] | None,
    started: float,
) -> TransferResult:
    def verify(stored: BinaryIO) -> None:
        reader = HashingReader(stored, expected.hash_algo)
        buf = bytearray(buffer_size_for(expected.size))
        while reader.readinto(buf):
            pass
        digest = reader.hexdigest()
        if reader.bytes_read != expected.size or digest != expected.hash:
            raise _mismatch(source.site, src_path, expected, reader.bytes_read, digest)

    entry = target.write_local(dst_path, local, expected.size, verify, on_bytes)
    return TransferResult(bytes=entry.size, duration=time.monotonic() - started, ref=entry.ref)
