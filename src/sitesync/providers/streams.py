"""Stream helpers shared by the providers."""

from __future__ import annotations

from sitesync.providers.base import ReadableStream


def read_upto(stream: ReadableStream, n: int) -> bytes:
    """Read ``n`` bytes, or fewer at the end of the stream (``readinto`` when the stream has it)."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    readinto = getattr(stream, "readinto", None)
    while got < n:
        if readinto is not None:
            k = readinto(view[got:])
        else:
            chunk = stream.read(n - got)
            k = len(chunk)
            view[got : got + k] = chunk
        if not k:
            break
        got += k
    return bytes(view[:got]) if got < n else bytes(buf)
