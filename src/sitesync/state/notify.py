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
"""

from __future__ import annotations

import logging
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
        self.listening = threading.Event()  # set while the LISTEN connection is open (tests wait on it)
        self._thread = threading.Thread(target=self._run, name="sitesync-notifications", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

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
                    while not self._stop.is_set():
                        # wakes at least once a second to see a stop request
                        if any(True for _ in conn.notifies(timeout=1.0)):
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
