"""Waking workers on this machine at once when work is added (instead of at the next poll).

Each running worker listens on a UDP socket bound to 127.0.0.1 and leaves a small file named
``<pid>-<token>.port`` in the installation's wake folder. ``notify_workers`` sends one datagram to
every live worker; files of dead processes are pruned. Loopback only, no payload of meaning.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
from pathlib import Path

from sitesync.engine.liveness import pid_alive


class WakeListener:
    def __init__(self, wake_dir: Path) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        wake_dir.mkdir(parents=True, exist_ok=True)
        self._file = wake_dir / f"{os.getpid()}-{self.port}.port"
        self._file.write_text(str(self.port), encoding="ascii")

    def set(self) -> None:
        """Wake the waiter from inside this process (stop requests, in-process actions)."""
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"w", ("127.0.0.1", self.port))

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds; return True if woken."""
        readable, _, _ = select.select([self._sock], [], [], max(0.0, timeout))
        if readable:
            self._drain()
            return True
        return False

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._sock.recv(64)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.unlink()
        self._sock.close()


def notify_workers(wake_dir: Path) -> int:
    """Wake every live worker of this installation on this machine. Returns how many were told."""
    if not wake_dir.is_dir():
        return 0
    told = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for path in wake_dir.glob("*.port"):
            try:
                pid = int(path.name.split("-", 1)[0])
                port = int(path.read_text(encoding="ascii").strip())
            except (ValueError, OSError):
                continue
            if not pid_alive(pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            with contextlib.suppress(OSError):
                sock.sendto(b"w", ("127.0.0.1", port))
                told += 1
    return told
