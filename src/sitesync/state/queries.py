"""State store, read side: the summaries and details the faces show (status tables, where a file
is, a representation's files per site) and what the worker asks of its queues (when the next
retry falls due, what a run left undone). Read-only; every query is bounded by an index."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.base import StoreBase, chunked
from sitesync.state.catalog import _rep_row, _rep_select
from sitesync.state.records import FileRow, ReplicaRow, RepresentationRow, SiteSummary


@dataclass(slots=True)
class SiteState:
    """A representation on one site, aggregated over its files."""

    counts: dict[str, int] = field(default_factory=dict)
    bytes_present: int = 0
    bytes_in_flight: int = 0
    paused: bool = False
    priority: int | None = None
    attempts: int = 0
    updated_at: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class RepresentationSummary:
    representation: RepresentationRow
    sites: dict[str, SiteState]


def _replica_row(m: Any) -> ReplicaRow:
    return ReplicaRow(
        id=m["id"],
        file_id=m["file_id"],
        representation_id=m["representation_id"],
        site=m["site"],
        status=m["status"],
        priority=m["priority"],
        paused=bool(m["paused"]),
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        last_error=m["last_error"],
        last_failed_at=m["last_failed_at"],
        present_since=m["present_since"],
        bytes_done=m["bytes_done"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
        source_site=m["source_site"],
        updated_at=m["updated_at"],
    )


class QueriesMixin(StoreBase):
    # per-status file counts of the Sync Queue summaries (kept current by summaries.py)
    _COUNTS = (
        (s.PRESENT, "files_present"),
        (s.QUEUED, "files_queued"),
        (s.IN_PROGRESS, "files_in_progress"),
        (s.FAILED, "files_failed"),
        (s.REMOVING, "files_removing"),
        (s.MISSING, "files_missing"),
        (s.NO_SOURCE, "files_no_source"),
    )

    def project_site_summaries(self, project_id: int) -> list[SiteSummary]:
        """Per site: how many of the project's files are in each status, the bytes verified there,
        and the size of the representations it holds or wants. Read from the per-site counters
        (``site_counts``: a few rows per site, kept current with the summaries), never from the
        per-representation summaries or the replicas."""
        c = s.site_counts
        sums = [sa.func.sum(c.c[col]).label(status) for status, col in self._COUNTS]
        q = (
            sa.select(
                c.c.site,
                *sums,
                sa.func.sum(c.c.representations).label("representations"),
                sa.func.sum(c.c.bytes_present).label("bytes_present"),
                sa.func.sum(c.c.total_size).label("bytes_total"),
            )
            .where(c.c.project_id == project_id)
            .group_by(c.c.site)
            .order_by(c.c.site)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        out = []
        for row in rows:
            if not row.representations:  # every summary row of the site is gone
                continue
            counts = {status: int(row._mapping[status] or 0) for status, _ in self._COUNTS}
            counts = {k: v for k, v in counts.items() if v}
            out.append(SiteSummary(row.site, counts, int(row.bytes_present or 0), int(row.bytes_total or 0)))
        return out

    def site_file_counts(self) -> list[dict[str, Any]]:
        """Per project and site: files in each status and bytes verified there (every status listed,
        zeros included), from the per-site counters in one grouped read (what monitoring scrapes)."""
        c, proj = s.site_counts, s.projects
        sums = [sa.func.sum(c.c[col]).label(status) for status, col in self._COUNTS]
        q = (
            sa.select(
                proj.c.name.label("project"),
                c.c.site,
                *sums,
                sa.func.sum(c.c.bytes_present).label("bytes"),
                sa.func.sum(c.c.representations).label("representations"),
            )
            .join(proj, proj.c.id == c.c.project_id)
            .group_by(proj.c.name, c.c.site)
            .order_by(proj.c.name, c.c.site)
        )
        with self._read() as conn:
            rows = conn.execute(q).all()
        return [
            {
                "project": row.project,
                "site": row.site,
                "files": {status: int(row._mapping[status] or 0) for status, _ in self._COUNTS},
                "bytes_present": int(row.bytes or 0),
            }
            for row in rows
            if row.representations
        ]

    def project_status_counts(self) -> dict[int, dict[str, int]]:
        """project id -> status -> number of files, from the per-site counters."""
        c = s.site_counts
        sums = [sa.func.sum(c.c[col]).label(status) for status, col in self._COUNTS]
        out: dict[int, dict[str, int]] = {}
        with self._read() as conn:
            for row in conn.execute(
                sa.select(c.c.project_id, *sums).group_by(c.c.project_id).having(sa.func.sum(c.c.representations) > 0)
            ):
                counts = {status: int(row._mapping[status] or 0) for status, _ in self._COUNTS}
                out[row.project_id] = {k: v for k, v in counts.items() if v}
        return out

    def representation_page(
        self,
        project_id: int,
        *,
        limit: int = 200,
        offset: int = 0,
        rep_ids: Sequence[int] | None = None,
    ) -> tuple[int, list[RepresentationRow]]:
        rep = s.representations
        cond = [rep.c.project_id == project_id]
        if rep_ids is not None:
            cond.append(rep.c.id.in_(list(rep_ids)))
        with self._read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(rep).where(*cond)).scalar_one()
            rows = conn.execute(
                _rep_select()
                .where(*cond)
                .order_by(rep.c.folder, rep.c.product, rep.c.version, rep.c.name)
                .limit(limit)
                .offset(offset)
            ).all()
        return total, [_rep_row(row) for row in rows]

    def summarize(
        self, reps: Sequence[RepresentationRow], sites: Sequence[str] | None = None
    ) -> list[RepresentationSummary]:
        """Aggregate each representation's replicas per site (all sites, or only ``sites``)."""
        r, f, t = s.replicas, s.files, s.representation_sites
        ids = [x.id for x in reps]
        states: dict[int, dict[str, SiteState]] = {i: {} for i in ids}
        with self._read() as conn:
            for part in chunked(ids):
                q = (
                    sa.select(
                        r.c.representation_id,
                        r.c.site,
                        r.c.status,
                        sa.func.count().label("n"),
                        sa.func.sum(f.c.size).label("size"),
                        sa.func.sum(r.c.bytes_done).label("done"),
                        sa.func.max(r.c.updated_at).label("updated"),
                        sa.func.max(r.c.attempts).label("attempts"),
                        sa.func.max(r.c.last_error).label("error"),
                    )
                    .join(f, f.c.id == r.c.file_id)
                    .where(r.c.representation_id.in_(part))
                    .group_by(r.c.representation_id, r.c.site, r.c.status)
                )
                if sites is not None:
                    q = q.where(r.c.site.in_(list(sites)))
                for row in conn.execute(q):
                    st = states[row.representation_id].setdefault(row.site, SiteState())
                    st.counts[row.status] = row.n
                    if row.status == s.PRESENT:
                        st.bytes_present += int(row.size or 0)
                    elif row.status == s.IN_PROGRESS:
                        st.bytes_in_flight += int(row.done or 0)
                    st.attempts = max(st.attempts, int(row.attempts or 0))
                    if row.updated is not None:
                        st.updated_at = max(st.updated_at or 0.0, row.updated)
                    if row.error and row.status in (s.FAILED, s.QUEUED, s.MISSING, s.NO_SOURCE):
                        st.last_error = row.error
                tq = sa.select(t.c.representation_id, t.c.site, t.c.priority, t.c.paused).where(
                    t.c.representation_id.in_(part)
                )
                if sites is not None:
                    tq = tq.where(t.c.site.in_(list(sites)))
                for row in conn.execute(tq):
                    st = states[row.representation_id].setdefault(row.site, SiteState())
                    st.priority = row.priority
                    st.paused = bool(row.paused)
        return [RepresentationSummary(x, states[x.id]) for x in reps]

    def representation_detail(self, rep_id: int) -> list[tuple[FileRow, list[ReplicaRow]]]:
        """Every file of the representation with its replica on every site."""
        r, f = s.replicas, s.files
        with self._read() as conn:
            files = conn.execute(sa.select(f).where(f.c.representation_id == rep_id).order_by(f.c.path)).all()
            reps = conn.execute(sa.select(r).where(r.c.representation_id == rep_id).order_by(r.c.site)).all()
        by_file: dict[int, list[ReplicaRow]] = {}
        for row in reps:
            by_file.setdefault(row.file_id, []).append(_replica_row(row._mapping))
        return [
            (FileRow(x.id, x.representation_id, x.path, x.size, x.hash_algo, x.hash), by_file.get(x.id, []))
            for x in files
        ]

    def replicas_for_files(self, file_ids: Sequence[int]) -> dict[int, list[ReplicaRow]]:
        r = s.replicas
        out: dict[int, list[ReplicaRow]] = {}
        with self._read() as conn:
            for part in chunked(list(file_ids)):
                for row in conn.execute(sa.select(r).where(r.c.file_id.in_(part))):
                    out.setdefault(row.file_id, []).append(_replica_row(row._mapping))
        return out

    def next_due(self, pairs: Iterable[tuple[int, str]], now: float | None = None) -> float | None:
        """The earliest time after ``now`` at which a retry (a queued, unpaused file with failed
        attempts: only retries wait for a future time) of one of these (project id, site) queues
        falls due, or None. One probe of ``ix_replicas_due`` per queue: idle workers sleep until
        then instead of a whole ``loop_delay``."""
        pairs = sorted(set(pairs))
        if not pairs:
            return None
        now = time.time() if now is None else now
        r = s.replicas
        q = sa.select(sa.func.min(r.c.next_attempt_at)).where(
            r.c.project_id == sa.bindparam("p"),
            r.c.site == sa.bindparam("s"),
            # literal constants so SQLite can prove the partial index applies
            r.c.status == sa.literal_column(f"'{s.QUEUED}'"),
            r.c.paused == sa.false(),
            r.c.attempts > sa.literal_column("0"),
            r.c.next_attempt_at > sa.bindparam("now"),
        )
        found: list[float] = []
        with self._read() as conn:
            for project_id, site in pairs:
                due = conn.execute(q, {"p": project_id, "s": site, "now": now}).scalar()
                if due is not None:
                    found.append(float(due))
        return min(found, default=None)

    def queue_remaining(self, pairs: Iterable[tuple[int, str]], now: float | None = None) -> dict[str, int]:
        """What is left in these (project id, site) queues, unpaused files only: ``due`` (queued
        and due now: no reachable copy to read, or not claimed yet), ``retry_later`` (queued,
        waiting for a retry's back-off), ``in_progress`` (leased by a worker) and ``failed``."""
        out = {"due": 0, "retry_later": 0, "in_progress": 0, "failed": 0}
        pairs = sorted(set(pairs))
        if not pairs:
            return out
        now = time.time() if now is None else now
        r = s.replicas
        later = sa.case((r.c.next_attempt_at > sa.bindparam("now"), 1), else_=0).label("later")
        q = (
            sa.select(r.c.status, later, sa.func.count())
            .where(
                r.c.project_id == sa.bindparam("p"),
                r.c.site == sa.bindparam("s"),
                r.c.status.in_((s.QUEUED, s.IN_PROGRESS, s.FAILED)),
                r.c.paused == sa.false(),
            )
            .group_by(r.c.status, later)
        )
        with self._read() as conn:
            for project_id, site in pairs:
                for status, is_later, n in conn.execute(q, {"p": project_id, "s": site, "now": now}):
                    if status == s.QUEUED:
                        out["retry_later" if is_later else "due"] += int(n)
                    else:
                        out[status] += int(n)
        return out

    def pending_totals(self, pairs: Sequence[tuple[int, str]]) -> tuple[int, int]:
        """(files, bytes) queued or in progress for the given (project id, site) queues."""
        if not pairs:
            return 0, 0
        r, f = s.replicas, s.files
        cond = sa.or_(*(sa.and_(r.c.project_id == pid, r.c.site == site) for pid, site in pairs))
        q = (
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(f.c.size), 0))
            .join(f, f.c.id == r.c.file_id)
            .where(cond, r.c.status.in_((s.QUEUED, s.IN_PROGRESS)), r.c.paused == sa.false())
        )
        with self._read() as conn:
            n, size = conn.execute(q).one()
        return int(n), int(size)
