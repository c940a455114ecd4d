"""State store, coordinator side: what the dashboard's overview strip and Sites view count. Read-only.

The counts come from the summaries ``summaries.py`` keeps current (one row per representation,
one per representation and site); only the bytes waiting or failed on a site are summed over the
replicas in those statuses (index ``ix_replicas_project_site_status``), never over present ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.base import StoreBase
from sitesync.state.records import EventRow

# How far back (matching events) the Sites view looks for a site's latest transfer and failure.
LATEST_EVENTS_WINDOW = 100_000


class OverviewMixin(StoreBase):
    def representation_status_counts(self, project_id: int) -> tuple[int, dict[str, int]]:
        """The project's number of representations, and how many are in each overall status
        (every status the summaries hold, present included; those without replicas are left out)."""
        t, r = s.representation_states, s.representations
        with self._read() as conn:
            total = int(conn.execute(sa.select(sa.func.count()).where(r.c.project_id == project_id)).scalar_one())
            counts = {
                row.status: int(row.n)
                for row in conn.execute(
                    sa.select(t.c.status, sa.func.count().label("n"))
                    .where(t.c.project_id == project_id)
                    .group_by(t.c.status)
                )
            }
        return total, counts

    def transfers_in_progress(self, project_id: int, sites: Sequence[str]) -> list[dict[str, int | str]]:
        """The (representation, site) pairs of the project being transferred now: files in progress,
        bytes already there (verified, and in flight as last recorded) and the bytes they will hold."""
        ss, r = s.site_states, s.representations
        q = (
            sa.select(
                ss.c.representation_id,
                ss.c.site,
                ss.c.files_in_progress,
                ss.c.bytes_present,
                ss.c.bytes_in_flight,
                r.c.total_size,
            )
            .join(r, r.c.id == ss.c.representation_id)
            .where(ss.c.project_id == project_id, ss.c.site.in_(list(sites)), ss.c.status == "in_progress")
        )
        with self._read() as conn:
            return [dict(row._mapping) for row in conn.execute(q)]

    def waiting_bytes_by_site(self, project_id: int) -> dict[str, dict[str, tuple[int, int]]]:
        """site -> status (queued, in_progress, failed) -> (files, bytes), from the replicas in
        those statuses only."""
        rp, f = s.replicas, s.files
        q = (
            sa.select(rp.c.site, rp.c.status, sa.func.count().label("n"), sa.func.sum(f.c.size).label("size"))
            .join(f, f.c.id == rp.c.file_id)
            .where(rp.c.project_id == project_id, rp.c.status.in_([s.QUEUED, s.IN_PROGRESS, s.FAILED]))
            .group_by(rp.c.site, rp.c.status)
        )
        out: dict[str, dict[str, tuple[int, int]]] = {}
        with self._read() as conn:
            for row in conn.execute(q):
                out.setdefault(row.site, {})[row.status] = (int(row.n), int(row.size or 0))
        return out

    def latest_events_by_site(
        self, project_id: int, kinds: Sequence[str], window: int = LATEST_EVENTS_WINDOW
    ) -> dict[tuple[str, str], EventRow]:
        """(site, kind) -> the newest event of that kind on that site (as target), among the
        project's latest ``window`` events of those kinds."""
        e = s.events
        recent = (
            sa.select(e.c.id, e.c.site, e.c.kind)
            .where(e.c.project_id == project_id, e.c.kind.in_(list(kinds)), e.c.site.is_not(None))
            .order_by(e.c.id.desc())
            .limit(window)
            .subquery()
        )
        newest = sa.select(sa.func.max(recent.c.id)).group_by(recent.c.site, recent.c.kind)
        with self._read() as conn:
            rows = conn.execute(sa.select(e).where(e.c.id.in_(newest))).all()
        out: dict[tuple[str, str], EventRow] = {}
        for row in rows:
            event = EventRow(**row._mapping)
            out[(str(event.site), event.kind)] = event
        return out


__all__ = ["LATEST_EVENTS_WINDOW", "OverviewMixin"]
