"""Content hashing: the catalog's hash algorithm and a stream wrapper that hashes and counts bytes.

Every byte sitesync moves passes through ``HashingReader``: it feeds the hasher, counts bytes for
progress, and lets the transfer layer prove that what arrived matches the catalog.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO, Protocol

import xxhash

DEFAULT_ALGORITHM = "xxh3_128"
CHUNK_SIZE = 1024 * 1024
DRAIN_CHUNK = 64 * 1024


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def _blake3() -> Hasher:
    import blake3  # optional dependency

    return blake3.blake3()


_ALGORITHMS: dict[str, Callable[[], Hasher]] = {
    "xxh3_128": xxhash.xxh3_128,
    "blake3": _blake3,
}


def supported_algorithms() -> list[str]:
    return sorted(_ALGORITHMS)


def new_hasher(algorithm: str = DEFAULT_ALGORITHM) -> Hasher:
    try:
        factory = _ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"unknown hash algorithm {algorithm!r}; use one of {supported_algorithms()}") from None
    return factory()


def hash_stream(stream: BinaryIO, algorithm: str = DEFAULT_ALGORITHM, buffer_size: int = CHUNK_SIZE) -> tuple[int, str]:
    """Hash a readable binary stream to its end; return (size, hexdigest)."""
    hasher = new_hasher(algorithm)
    size = 0
    buf = bytearray(buffer_size)
    view = memoryview(buf)
    readinto = getattr(stream, "readinto", None)
    while True:
        if readinto is not None:
            n = readinto(buf)
            if not n:
                break
            hasher.update(view[:n])
        else:
            chunk = stream.read(buffer_size)
            if not chunk:
                break
            n = len(chunk)
            hasher.update(chunk)
        size += n
    return size, hasher.hexdigest()


def buffer_size_for(size: int) -> int:
    """A read buffer for a file of ``size`` bytes: one read gets it all (and the next sees its end);
    never more than CHUNK_SIZE. A 1 MiB buffer per small file costs more than reading it."""
    return max(1, min(CHUNK_SIZE, size + 1))


def hash_file(path: str, algorithm: str = DEFAULT_ALGORITHM) -> tuple[int, str]:
    with open(path, "rb", buffering=0) as fh:
        return hash_stream(fh, algorithm, buffer_size_for(os.fstat(fh.fileno()).st_size))


class HashingReader:
    """A read-only stream that hashes and counts everything read through it.

    ``on_bytes`` is called with the number of bytes of each read (the in-memory progress counter).
    """

    def __init__(
        self,
        raw: BinaryIO,
        algorithm: str = DEFAULT_ALGORITHM,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self._raw = raw
        self._hasher = new_hasher(algorithm)
        self._on_bytes = on_bytes
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size is not None and size >= 0 else -1)
        if data:
            self._account(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        readinto = getattr(self._raw, "readinto", None)
        if readinto is None:
            data = self.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        n = readinto(buffer) or 0
        if n:
            self._account(memoryview(buffer)[:n])
        return n

    def _account(self, data: bytes | memoryview) -> None:
        self._hasher.update(data)
        n = len(data)
        self.bytes_read += n
        if self._on_bytes is not None:
            self._on_bytes(n)

    def drain(self) -> None:
        """Read (and hash) whatever the consumer left unread, so the digest covers the whole source."""
        buf = bytearray(DRAIN_CHUNK)  # usually the consumer read to the end: one empty read
        while self.readinto(buf):
            pass

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
