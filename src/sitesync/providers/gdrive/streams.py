"""Byte streams of the ``gdrive`` provider.

``StreamUpload`` feeds a resumable upload from a one-pass stream (the transfer layer's hashing
reader): it keeps only the chunk not yet acknowledged by Drive, and holds the *final* chunk back
until every byte was read and ``commit_check`` accepted them. Drive creates the file (or the new
revision) only when the final chunk arrives, so a rejected or interrupted upload leaves nothing
visible. ``DriveReader`` streams a download with ranged requests of ``chunk_size`` bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import Any

from googleapiclient.http import MediaUpload

from sitesync.errors import PermanentStorageError, TransientStorageError
from sitesync.providers.base import CommitCheck, ReadableStream
from sitesync.providers.gdrive.api import SourceStreamError

MIME = "application/octet-stream"


def read_exactly_or_more(stream: ReadableStream, limit: int) -> bytes:
    """Read up to ``limit`` bytes, stopping early only at the end of the stream."""
    parts: list[bytes] = []
    got = 0
    while got < limit:
        chunk = stream.read(min(limit - got, 1024 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def read_for_commit(
    stream: ReadableStream, size: int, commit_check: CommitCheck, md5: Any, *, site: str, path: str
) -> bytes:
    """All ``size`` bytes of a small file, verified by ``commit_check`` before anything is sent."""
    data = read_exactly_or_more(stream, size + 1)
    md5.update(data[:size])
    commit_check()  # drains and verifies the source; raises on a mismatch
    if len(data) != size:
        raise PermanentStorageError(
            f"site {site}: write {path}: the source gave {len(data)}{'+' if len(data) > size else ''} bytes, "
            f"expected {size}",
            site=site,
        )
    return data


class StreamUpload(MediaUpload):
    """A resumable ``MediaUpload`` over a forward-only stream of a known size."""

    def __init__(
        self,
        stream: ReadableStream,
        size: int,
        chunk_size: int,
        commit_check: CommitCheck,
        *,
        site: str,
        path: str,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._size = size
        self._chunk = chunk_size
        self._commit_check = commit_check
        self._site = site
        self._path = path
        self._buffer = bytearray()
        self._buffer_start = 0  # offset of _buffer[0] in the file
        self._read = 0  # bytes taken from the stream (never more than size)
        self._committed = False
        self.md5 = hashlib.md5(usedforsecurity=False)

    @property
    def consumed(self) -> bool:
        return self._read > 0

    # MediaUpload interface ------------------------------------------------------------------
    def chunksize(self) -> int:
        return self._chunk

    def mimetype(self) -> str:
        return MIME

    def size(self) -> int:
        return self._size

    def resumable(self) -> bool:
        return True

    def has_stream(self) -> bool:
        return False

    def getbytes(self, begin: int, length: int) -> bytes:
        try:
            return self._getbytes(begin, length)
        except (SourceStreamError, PermanentStorageError):
            raise
        except Exception as exc:
            raise SourceStreamError(exc) from exc

    def _getbytes(self, begin: int, length: int) -> bytes:
        if begin < self._buffer_start:
            raise PermanentStorageError(
                f"site {self._site}: write {self._path}: Drive asked to resend bytes already released", site=self._site
            )
        del self._buffer[: begin - self._buffer_start]
        self._buffer_start = begin
        end = min(begin + length, self._size)
        while self._buffer_start + len(self._buffer) < end:
            piece = self._stream.read(min(end - self._read, 1024 * 1024))
            if not piece:
                break
            self._buffer += piece
            self._read += len(piece)
            self.md5.update(piece)
        have = self._buffer_start + len(self._buffer)
        if have < end or end == self._size:
            self._commit()  # the final chunk (or a short source): verify before Drive may finish
        return bytes(self._buffer[: end - begin])

    def _commit(self) -> None:
        if self._committed:
            return
        extra = self._stream.read(1)
        self._commit_check()  # drains and verifies the whole source
        if self._read != self._size or extra:
            raise PermanentStorageError(
                f"site {self._site}: write {self._path}: the source gave "
                f"{self._read}{'+' if extra else ''} bytes, expected {self._size}",
                site=self._site,
            )
        self._committed = True

    def to_json(self) -> str:  # pragma: no cover - only used to pickle uploads, which we never do
        raise NotImplementedError("stream uploads cannot be serialised")


class DriveReader(io.RawIOBase):
    """Streams a Drive file with ranged ``alt=media`` requests of ``chunk`` bytes."""

    def __init__(self, fetch: Callable[[int, int], bytes], size: int, chunk: int, *, site: str) -> None:
        self._fetch = fetch  # (start, end inclusive) -> bytes
        self._site = site
        self._size = size
        self._chunk = chunk
        self._pos = 0
        self._buffer = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._offset >= len(self._buffer):
            if self._pos >= self._size:
                return 0
            end = min(self._pos + self._chunk, self._size) - 1
            data = self._fetch(self._pos, end)
            if not data:
                raise TransientStorageError(
                    f"site {self._site}: Drive returned no data at offset {self._pos} of {self._size}", site=self._site
                )
            self._buffer, self._offset = data, 0
            self._pos += len(data)
        n = min(len(buffer), len(self._buffer) - self._offset)
        buffer[:n] = self._buffer[self._offset : self._offset + n]
        self._offset += n
        return n
