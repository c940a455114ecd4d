"""Waking workers on other machines through PostgreSQL (LISTEN/NOTIFY).

Workers that share one PostgreSQL queue run on many machines: the artists' workstations, the studio
file server, a cloud gateway. The loopback wake (``engine/wake.py``) reaches only the workers of the
machine where work was added, so a download clicked in a dashboard served elsewhere, or a farm job's
``wait``, would otherwise sit until the worker's next poll (``loop_delay``, a minute by default).

After every action that adds or unblocks work the client sends a notification on the database
(``notify_workers``), and each worker keeps one extra connection that LISTENs and wakes its loop
when a notification arrives (``NotificationRelay``). Notifications carry nothing: a woken worker
looks at its queues as it would at a poll, so a spurious wake (another installation in the same
database) costs one look. Each time the LISTEN starts (and after a lost connection is reopened,
after a growing pause) the worker looks once, for work added meanwhile; while it is down the
worker polls as before. SQLite
installations are one machine, so they need none of this.

The relay thread sleeps in ``select()`` on the LISTEN connection's socket and on a pipe of its own;
``close()`` writes to the pipe, so stopping it (every ``sync --once`` and short command on
PostgreSQL) takes no time instead of waiting for a poll to run out.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
from collections.abc import Callable

import psycopg
import sqlalchemy as sa
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import Connection

from sitesync.state.database import mask_url

log = logging.getLogger("sitesync.worker")

CHANNEL = "sitesync_wake"
FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0


def notify_workers(conn: Connection) -> None:
    """Send the wake notification (delivered when the surrounding transaction commits)."""
    conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def _conninfo(url: sa.URL) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (its query options included)."""
    args = url.translate_connect_args(username="user", database="dbname")
    options = {key: (value[-1] if isinstance(value, tuple) else value) for key, value in url.query.items()}
    return make_conninfo(**{k: str(v) for k, v in args.items()}, **options)


class NotificationRelay:
    """A thread that LISTENs on the database and calls ``on_notify`` for every wake notification."""

    def __init__(self, url: sa.URL, on_notify: Callable[[], None]) -> None:
        self._conninfo = _conninfo(url)
        self._where = mask_url(url)
        self._on_notify = on_notify
        self._stop = threading.Event()
        self._stop_r, self._stop_w = os.pipe()  # written by close(): wakes the select() at once
        self.listening = threading.Event()  # set while the LISTEN connection is open (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="sitesync-notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():
            for fd in (self._stop_r, self._stop_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _wait_readable(self, conn: psycopg.Connection) -> bool:
        """Sleep until the connection has something to read (True) or close() was called (False)."""
        readable, _, _ = select.select([conn.fileno(), self._stop_r], [], [])
        return self._stop_r not in readable

    def _run(self) -> None:
        pause = FIRST_PAUSE_SECONDS
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if pause > FIRST_PAUSE_SECONDS:
                        log.info("listening for wake notifications on %s again", self._where)
                    # one look now: work may have been added before the LISTEN or while it was down
                    self._on_notify()
                    pause = FIRST_PAUSE_SECONDS
                    while not self._stop.is_set() and self._wait_readable(conn):
                        # timeout 0: read what arrived (a lost connection raises here)
                        if any(True for _ in conn.notifies(timeout=0)):
                            self._on_notify()
            except Exception as exc:  # the relay never dies: polling covers any gap
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning(
                    "no wake notifications from %s (%s); polling meanwhile, trying again in %.0fs",
                    self._where,
                    reason,
                    pause,
                )
            finally:
                self.listening.clear()
            if self._stop.wait(pause):
                return
            pause = min(LONGEST_PAUSE_SECONDS, pause * 2)


__all__ = ["CHANNEL", "NotificationRelay", "notify_workers"]
