"""Is the file at a location the content expected there, right now?

Every destructive or trusting step asks this at the storage at the moment it acts: a removal
before it deletes (is this still the copy the removal was asked for?), a transfer before it writes
over an existing file (is that sitesync's own old copy, or someone else's file?), the engine after a
source read failed (is the source gone or changed, or was that a glitch of the read?).

The cheap answer comes from the storage's fingerprint of the copy sitesync last verified there
(``Seen``: size, content hash, and the storage's modification time and id of the stored object, an
inode or an object version): a file with the same size, time and id is that copy, unchanged, and
reading it again would prove nothing new. When the fingerprint is unknown or differs, the file is
read to its end through the catalog's hash algorithm (``deep``), and its content decides.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from sitesync.hashing import HashingReader
from sitesync.providers.base import Entry, Provider


class Verdict(enum.Enum):
    SAME = "same"  # the expected content is there
    MISSING = "missing"  # no file at the location
    DIFFERENT = "different"  # a file whose size or content is not the expected one
    UNPROVEN = "unproven"  # same size, fingerprint unknown or changed, not hashed (deep=False)


@dataclass(frozen=True, slots=True)
class Seen:
    """What sitesync last verified at a location (a replica's ``seen_*`` columns)."""

    size: int | None
    hash: str | None  # "algo:hex"
    mtime: float | None = None
    ref: str | None = None

    def same_copy(self, entry: Entry) -> bool:
        """``entry`` is, by the storage's fingerprint, the very copy that was verified."""
        if self.size is None or entry.size != self.size or self.mtime is None or entry.mtime is None:
            return False
        if abs(entry.mtime - self.mtime) > 1e-6:
            return False
        return self.ref is None or entry.ref is None or entry.ref == self.ref


@dataclass(frozen=True, slots=True)
class Expected:
    """The content a location should hold."""

    size: int
    hash_algo: str
    hash: str

    @property
    def tagged(self) -> str:
        return f"{self.hash_algo}:{self.hash}"


@dataclass(frozen=True, slots=True)
class Found:
    verdict: Verdict
    entry: Entry | None  # the file found (None when missing)
    detail: str = ""


def hash_stored(
    provider: Provider, path: str, algorithm: str, on_bytes: Callable[[int], None] | None = None
) -> tuple[int, str]:
    """Read a stored copy to its end through ``algorithm``: (bytes read, hex digest)."""
    with provider.open_read(path) as raw:
        reader = HashingReader(raw, algorithm, on_bytes)
        reader.drain()
    return reader.bytes_read, reader.hexdigest()


def check_content(
    provider: Provider,
    location: str,
    expected: Expected,
    seen: Seen | None = None,
    *,
    deep: bool = True,
    entry: Entry | None = None,
) -> Found:
    """Whether ``location`` holds ``expected`` now. ``seen``: what was last verified there (its
    fingerprint answers without reading when it matches). ``deep``: hash when it cannot tell.
    ``entry``: the file's stat, if the caller has just taken it. Storage errors propagate."""
    entry = entry if entry is not None else provider.stat(location)
    if entry is None:
        return Found(Verdict.MISSING, None, "no file there")
    if entry.size != expected.size:
        return Found(Verdict.DIFFERENT, entry, f"{entry.size} bytes, expected {expected.size}")
    if seen is not None and seen.hash == expected.tagged and seen.same_copy(entry):
        return Found(Verdict.SAME, entry, "the copy verified there before, unchanged (size, time and id)")
    if not deep:
        return Found(Verdict.UNPROVEN, entry, "same size; not read")
    size, digest = hash_stored(provider, location, expected.hash_algo)
    if size == expected.size and digest == expected.hash:
        return Found(Verdict.SAME, entry, f"{expected.hash_algo} matches")
    return Found(Verdict.DIFFERENT, entry, f"{expected.hash_algo} {digest[:16]}..., expected {expected.hash[:16]}...")


__all__ = ["Expected", "Found", "Seen", "Verdict", "check_content", "hash_stored"]
