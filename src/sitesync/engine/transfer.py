"""One file from one site to another, proven: the bytes stream from the source through the hasher
into the target provider's atomic write, which commits only if size and hash match the catalog.
A mismatch raises ``VerificationError`` and leaves nothing under the final name.

When the source is a local file system (CAP_LOCAL_PATH) and the target can copy from one
(CAP_LOCAL_COPY: ``local_drive``), the target copies in the kernel and the hash is taken by reading
back what it wrote, before the file gets its final name: the proof covers the stored bytes. With
``staged`` (the worker's transfers) a target that can (CAP_STAGED_WRITE) gives the verified copy its
final name at its next ``flush()``, made durable together with the rest of the batch. A site whose
``disable_capabilities`` switches one of these off, or a target that answers ``NotSupportedError``,
gets the streamed copy instead.

Before anything is written, the target location is looked at (DESIGN §7a): nothing there, write;
the version sitesync last saw there (``target_seen``, which the replica remembers: the copy it
verified, or the damaged copy validate or fsck judged), replace it; the expected content already
there (same size and hash), adopt it without copying; anything else is a file sitesync never
recorded there, or one changed since it last saw it, and it is never replaced
(``TargetOccupiedError``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sitesync.engine.bandwidth import Throttle
from sitesync.errors import NotSupportedError, TargetOccupiedError, VerificationError
from sitesync.hashing import HashingReader, buffer_size_for
from sitesync.identity.content import Expected, Seen, hash_stored
from sitesync.identity.storage import still_marked
from sitesync.providers.base import CAP_LOCAL_COPY, CAP_LOCAL_PATH, CAP_STAGED_WRITE, Entry, Provider
from sitesync.state.records import ClaimedReplica


@dataclass(frozen=True)
class TransferResult:
    bytes: int
    duration: float
    ref: str | None
    mtime: float | None = None  # the stored copy's modification time (its fingerprint, with ref)
    adopted: bool = False  # the expected content was already there: nothing was copied


def seen_of(claim: ClaimedReplica) -> Seen | None:
    """What sitesync last verified at a claimed replica's location (None: nothing recorded)."""
    if claim.seen_size is None and claim.seen_hash is None:
        return None
    return Seen(claim.seen_size, claim.seen_hash, claim.seen_mtime, claim.seen_ref)


def _occupied(target: Provider, dst_path: str, detail: str) -> TargetOccupiedError:
    return TargetOccupiedError(
        f"a different file is already at {dst_path} on site {target.site} ({detail}); sitesync did not "
        f"write it and will not replace it: move it away, or run `sitesync validate {target.site}`",
        site=target.site,
    )


def look_at_target(
    target: Provider, dst_path: str, expected: Expected, target_seen: Seen | None, started: float
) -> TransferResult | None:
    """What is at the target location before a transfer writes there: None (nothing, or the very
    copy sitesync last saw there: replace it), a result (the expected content is there: adopted),
    or ``TargetOccupiedError`` (anything else: a file sitesync never recorded there, or one changed
    since sitesync last saw it)."""
    existing = target.stat(dst_path)
    if existing is None:
        return None
    if target_seen is not None and target_seen.same_copy(existing):
        return None  # the version sitesync last saw there (an old or damaged copy): replace it
    seen_size = target_seen.size if target_seen is not None else None
    if existing.size not in (expected.size, seen_size):
        raise _occupied(target, dst_path, f"{existing.size} bytes, not the {expected.size} expected")
    size, digest = hash_stored(target, dst_path, expected.hash_algo)
    if size == expected.size and digest == expected.hash:
        return _adopted(existing, started)
    if target_seen is not None and target_seen.hash == f"{expected.hash_algo}:{digest}" and seen_size == size:
        return None  # the content sitesync verified there (only its fingerprint changed): replace it
    raise _occupied(target, dst_path, f"{expected.hash_algo} {digest[:16]}..., not the expected content")


def _adopted(existing: Entry, started: float) -> TransferResult:
    return TransferResult(0, time.monotonic() - started, existing.ref, existing.mtime, adopted=True)


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
    throttle: Throttle | None = None,
    *,
    target_seen: Seen | None = None,
    staged: bool = False,
) -> TransferResult:
    """``throttle``: the bandwidth limits this transfer goes through, accounted in its byte
    counter. While one is in force the bytes stream through Python in chunks (the kernel copy
    would move 16 MiB between two accountings). ``staged``: the caller calls the target's
    ``flush()`` before it counts the copy as done (the copy may get its final name only there)."""
    started = time.monotonic()
    still_marked(target, dst_path)  # the target's storage is still there (not an empty mount point)
    found = look_at_target(target, dst_path, expected, target_seen, started)
    if found is not None:
        return found
    limited = throttle is not None and throttle.limited
    if throttle is not None:
        on_bytes = throttle.wrap(on_bytes)
    local = source.local_path(src_path) if CAP_LOCAL_PATH in source.capabilities else None
    if local is not None and CAP_LOCAL_COPY in target.capabilities and not limited:
        staged = staged and CAP_STAGED_WRITE in target.capabilities
        try:
            return _copy_local(source, src_path, local, target, dst_path, expected, on_bytes, started, staged)
        except NotSupportedError:
            pass  # the target cannot copy this one from a local path after all: it is streamed below
    with source.open_read(src_path) as raw:
        reader = HashingReader(raw, expected.hash_algo, on_bytes)

        def commit_check() -> None:
            reader.drain()  # a source longer than the catalog says must fail, not be cut short
            digest = reader.hexdigest()
            if reader.bytes_read != expected.size or digest != expected.hash:
                raise _mismatch(source.site, src_path, expected, reader.bytes_read, digest)

        entry = target.write(dst_path, reader, expected.size, commit_check)
    return TransferResult(reader.bytes_read, time.monotonic() - started, entry.ref, entry.mtime)


def _copy_local(
    source: Provider,
    src_path: str,
    local: str,
    target: Provider,
    dst_path: str,
    expected: Expected,
    on_bytes: Callable[[int], None] | None,
    started: float,
    staged: bool,
) -> TransferResult:
    def verify(stored: BinaryIO) -> None:
        reader = HashingReader(stored, expected.hash_algo)
        buf = bytearray(buffer_size_for(expected.size))
        while reader.readinto(buf):
            pass
        digest = reader.hexdigest()
        if reader.bytes_read != expected.size or digest != expected.hash:
            raise _mismatch(source.site, src_path, expected, reader.bytes_read, digest)

    if staged:
        entry = target.write_local(dst_path, local, expected.size, verify, on_bytes, staged=True)
    else:
        entry = target.write_local(dst_path, local, expected.size, verify, on_bytes)
    return TransferResult(entry.size, time.monotonic() - started, entry.ref, entry.mtime)


__all__ = ["Expected", "TransferResult", "copy_verified", "look_at_target", "seen_of"]
