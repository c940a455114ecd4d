"""Checked writes and deletions of workfile content on a site (DESIGN §7a for mutable files).

``place`` streams a version's content from a source location through the hasher into the target
provider's atomic ``write``; its ``commit_check`` — run after the last byte is stored and before
the file gets its final name — proves the source content (size and hash) *and* looks at the target
location again: it must still hold exactly the content sitesync last put or saw there
(``expect``; None: nothing), checked by hash at that moment, not from memory. Anything else is a
change sitesync has not recorded: ``ChangedUnderUs`` is raised, nothing is replaced, and the
caller records the found content (a conflict: both kept).
"""

from __future__ import annotations

from sitesync.errors import VerificationError
from sitesync.hashing import DEFAULT_ALGORITHM, HashingReader
from sitesync.identity.content import hash_stored
from sitesync.identity.storage import still_marked
from sitesync.providers.base import Provider


class ChangedUnderUs(Exception):
    """The target location holds content sitesync did not record there (a local edit)."""

    def __init__(self, path: str, found_hash: str | None, found_size: int | None) -> None:
        super().__init__(f"{path} changed since sitesync last saw it")
        self.path = path
        self.found_hash = found_hash
        self.found_size = found_size


def _check_target(target: Provider, path: str, expect: str | None, content_hash: str | None) -> bool:
    """True when ``content_hash`` is already there; raises ``ChangedUnderUs`` for anything but
    nothing or ``expect``."""
    entry = target.stat(path)
    if entry is None:
        return False
    size, digest = hash_stored(target, path, DEFAULT_ALGORITHM)
    if content_hash is not None and digest == content_hash:
        return True
    if expect is None or digest != expect:
        raise ChangedUnderUs(path, digest, size)
    return False


def place(
    source: Provider,
    src_path: str,
    target: Provider,
    dst_path: str,
    size: int,
    content_hash: str,
    expect: str | None,
) -> int:
    """Put the content ``content_hash`` (``size`` bytes) read from ``src_path`` at ``dst_path``,
    replacing only ``expect`` (the hash sitesync last put or saw there; None: only an empty
    location). Returns the bytes written (0: the content was there already)."""
    still_marked(target, dst_path)
    if _check_target(target, dst_path, expect, content_hash):
        return 0
    with source.open_read(src_path) as raw:
        reader = HashingReader(raw, DEFAULT_ALGORITHM)

        def commit_check() -> None:
            reader.drain()
            digest = reader.hexdigest()
            if reader.bytes_read != size or digest != content_hash:
                raise VerificationError(
                    f"the copy of {src_path} on site {source.site} is not the recorded version "
                    f"({reader.bytes_read} bytes, {DEFAULT_ALGORITHM} {digest[:16]}...); nothing was written"
                )
            _check_target(target, dst_path, expect, content_hash)  # at the moment of replacing

        target.write(dst_path, reader, size, commit_check)
    return reader.bytes_read


def remove_checked(target: Provider, path: str, expect: str) -> bool:
    """Delete ``path`` only if it holds exactly ``expect`` now (a recorded deletion carried out).
    Returns whether a file was deleted; raises ``ChangedUnderUs`` for any other content."""
    still_marked(target, path)
    if target.stat(path) is None:
        return False
    _check_target(target, path, expect, None)
    target.delete(path)
    return True


__all__ = ["ChangedUnderUs", "place", "remove_checked"]
