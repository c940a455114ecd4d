"""Start-up of the long-running commands (``worker``, ``serve``): wait for the database server.

A service starts at boot, often before its PostgreSQL server, and may start while that server is
restarting. Interactive commands report an unreachable database at once (one line, exit 2); the
services log the same line and try again after a growing pause, until the server answers or they
are stopped (SIGTERM or Ctrl-C). Every other error (a wrong schema, a bad URL, bad settings) still
ends them at once: waiting would not fix it.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import TypeVar

from sitesync.errors import DatabaseUnreachableError

T = TypeVar("T")

FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0


def wait_for_database(start: Callable[[], T], log: logging.Logger) -> T | None:
    """``start()``'s result once the database answers; None if stopped by a signal meanwhile."""
    stopped = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda _signum, _frame: stopped.set())
    try:
        pause = FIRST_PAUSE_SECONDS
        while True:
            try:
                return start()
            except DatabaseUnreachableError as exc:
                log.error("%s; trying again in %.0fs (SIGTERM or Ctrl-C to stop)", exc, pause)
                if stopped.wait(pause):
                    log.info("stopped while waiting for the database")
                    return None
                pause = min(LONGEST_PAUSE_SECONDS, pause * 2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["wait_for_database"]
