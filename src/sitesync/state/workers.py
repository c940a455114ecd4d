"""State store, the running workers: registration, heartbeats and giving back the leases of
workers found dead.

Each worker registers (host, boot id, pid) when it starts, beats every few seconds while it runs,
and removes its row when it stops. Heartbeat times come from the database's own clock, so the
machines sharing a queue never compare their clocks. Which workers are dead is decided by the
engine (``engine/liveness.py``: it can look at this machine's processes); this module only
reads the rows and gives back the work of the workers it is told are dead.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.base import StoreBase, chunked
from sitesync.state.queue import requeue_leased


@dataclass(frozen=True, slots=True)
class WorkerRow:
    id: str
    host: str
    boot_id: str
    pid: int
    site_id: str
    started_at: float
    heartbeat_at: float
    silent_for: float  # seconds since its last heartbeat, by the database's clock


class WorkersMixin(StoreBase):
    def _db_now(self) -> sa.ColumnElement[Any]:
        """The database server's clock as epoch seconds (SQLite: this machine's, the only one)."""
        if self.is_postgres:
            return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)
        return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)

    def register_worker(self, worker_id: str, host: str, boot_id: str, pid: int, site_id: str) -> None:
        """Record a starting worker (or refresh its row) with a first heartbeat."""
        w = s.workers
        with self._write() as conn:
            conn.execute(w.delete().where(w.c.id == worker_id))
            conn.execute(
                w.insert().values(
                    id=worker_id,
                    host=host[:255],
                    boot_id=boot_id[:64],
                    pid=pid,
                    site_id=site_id,
                    started_at=time.time(),
                    heartbeat_at=self._db_now(),
                )
            )

    def worker_heartbeat(self, worker_id: str) -> bool:
        """Show that the worker is alive. False if its row is gone (others judged it dead and gave
        its work back: it must register again and will find its leases lost)."""
        w = s.workers
        with self._write() as conn:
            return conn.execute(w.update().where(w.c.id == worker_id).values(heartbeat_at=self._db_now())).rowcount > 0

    def forget_worker(self, worker_id: str) -> None:
        """A worker stopped cleanly."""
        with self._write() as conn:
            conn.execute(s.workers.delete().where(s.workers.c.id == worker_id))

    def workers(self) -> list[WorkerRow]:
        w = s.workers
        q = sa.select(*w.c, (self._db_now() - w.c.heartbeat_at).label("silent_for")).order_by(w.c.started_at)
        with self._read() as conn:
            return [WorkerRow(**row._mapping) for row in conn.execute(q)]

    def leased_owners(self) -> set[str]:
        """Every worker holding a lease on a transfer now (through ``ix_replicas_lease``)."""
        r = s.replicas
        q = sa.select(r.c.lease_owner).where(r.c.lease_owner.is_not(None), r.c.status == s.IN_PROGRESS).distinct()
        with self._read() as conn:
            return {row[0] for row in conn.execute(q)}

    def reclaim_leases(self, dead: Mapping[str, str], now: float | None = None) -> int:
        """Give the transfers leased by the ``dead`` workers (id -> why it is judged dead) back to
        the queue at once, without counting an attempt, and remove those workers' rows. Returns
        how many transfers went back."""
        if not dead:
            return 0
        now = time.time() if now is None else now
        r, w = s.replicas, s.workers
        owners = sorted(dead)
        total = 0
        with self._write() as conn:
            for part in chunked(owners, 500):
                total += requeue_leased(
                    conn,
                    [r.c.lease_owner.in_(part)],
                    now,
                    "transfer interrupted: its worker stopped",
                    lambda owner: f"worker {owner} {dead[owner]}; queued again",
                    lock=self.is_postgres,
                )
                conn.execute(w.delete().where(w.c.id.in_(part)))
        return total


__all__ = ["WorkerRow", "WorkersMixin"]
