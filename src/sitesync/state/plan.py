"""State store, read only: what the dry-run plan needs to say what a worker would do now.

Nothing here writes: the plan reads the replicas that are not present (per project, site, status,
pause and due time), the head of a queue in the order a claim takes it (priority, then id) with
the sites holding a verified copy of each file, and the files of a queue no usable site holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.base import StoreBase


@dataclass(frozen=True)
class OpenReplicas:
    """Replicas of one project and site in one state: how many, how many bytes."""

    project_id: int
    site: str
    status: str
    paused: bool
    due: bool  # next_attempt_at has passed (a queued file not due waits for its retry)
    files: int
    bytes: int
    next_attempt_at: float | None  # the soonest retry among those not due


@dataclass(frozen=True)
class PlannedFile:
    replica_id: int
    file_id: int
    representation_id: int
    path: str
    size: int
    priority: int
    attempts: int
    holders: tuple[str, ...]  # sites with a verified copy


class PlanMixin(StoreBase):
    def open_replicas(self, project_ids: Sequence[int], now: float) -> list[OpenReplicas]:
        """Every replica that is not present (queued, in progress, failed, waiting for a source,
        lost), grouped."""
        if not project_ids:
            return []
        r, f = s.replicas, s.files
        due = (r.c.next_attempt_at <= now).label("due")
        q = (
            sa.select(
                r.c.project_id,
                r.c.site,
                r.c.status,
                r.c.paused,
                due,
                sa.func.count().label("files"),
                sa.func.coalesce(sa.func.sum(f.c.size), 0).label("bytes"),
                sa.func.min(r.c.next_attempt_at).label("soonest"),
            )
            .join(f, f.c.id == r.c.file_id)
            .where(
                r.c.project_id.in_(list(project_ids)),
                r.c.status.in_((s.QUEUED, s.IN_PROGRESS, s.FAILED, s.NO_SOURCE, s.MISSING)),
            )
            .group_by(r.c.project_id, r.c.site, r.c.status, r.c.paused, due)
        )
        with self._read() as conn:
            return [
                OpenReplicas(
                    row.project_id,
                    row.site,
                    row.status,
                    bool(row.paused),
                    bool(row.due),
                    int(row.files),
                    int(row.bytes),
                    None if row.due else row.soonest,
                )
                for row in conn.execute(q)
            ]

    @staticmethod
    def _due_queued(project_id: int, site: str, now: float) -> list[sa.ColumnElement[bool]]:
        r = s.replicas
        return [
            r.c.project_id == project_id,
            r.c.site == site,
            r.c.status == s.QUEUED,
            r.c.paused == sa.false(),
            r.c.next_attempt_at <= now,
        ]

    def queue_head(
        self, project_id: int, site: str, sources: Sequence[str], now: float, limit: int
    ) -> tuple[list[PlannedFile], int, int]:
        """The first ``limit`` files a claim on this queue would take, in its order, and the
        count and bytes of all of them (due, not paused, a verified copy on one of ``sources``)."""
        r, f = s.replicas, s.files
        src, held = r.alias("src"), r.alias("held")
        cond = [
            *self._due_queued(project_id, site, now),
            sa.exists().where(src.c.file_id == r.c.file_id, src.c.status == s.PRESENT, src.c.site.in_(list(sources))),
        ]
        holders = (
            sa.select(sa.func.aggregate_strings(held.c.site, ","))
            .where(held.c.file_id == r.c.file_id, held.c.status == s.PRESENT)
            .scalar_subquery()
        )
        head = (
            sa.select(
                r.c.id,
                r.c.file_id,
                r.c.representation_id,
                f.c.path,
                f.c.size,
                r.c.priority,
                r.c.attempts,
                holders.label("holders"),
            )
            .join(f, f.c.id == r.c.file_id)
            .where(*cond)
            .order_by(r.c.priority.desc(), r.c.id)
            .limit(max(0, limit))
        )
        totals = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(f.c.size), 0)).join(f, f.c.id == r.c.file_id)
        with self._read() as conn:
            rows = conn.execute(head).all() if limit > 0 else []
            count, size = conn.execute(totals.where(*cond)).one()
        files = [
            PlannedFile(
                row.id,
                row.file_id,
                row.representation_id,
                row.path,
                int(row.size),
                int(row.priority),
                int(row.attempts),
                tuple(sorted(row.holders.split(","))) if row.holders else (),
            )
            for row in rows
        ]
        return files, int(count), int(size)

    def queue_without_source(
        self, project_id: int, site: str, sources: Sequence[str], now: float
    ) -> dict[str, tuple[int, int]]:
        """Due files of the queue no site in ``sources`` holds: ``unusable`` (a verified copy
        exists, on sites not usable from here) and ``nowhere`` (no verified copy anywhere), each
        as (files, bytes)."""
        r, f = s.replicas, s.files
        src, anywhere = r.alias("src"), r.alias("anywhere")
        no_usable = ~sa.exists().where(
            src.c.file_id == r.c.file_id, src.c.status == s.PRESENT, src.c.site.in_(list(sources) or [""])
        )
        somewhere = sa.exists().where(anywhere.c.file_id == r.c.file_id, anywhere.c.status == s.PRESENT)
        q = (
            sa.select(somewhere.label("held"), sa.func.count().label("n"), sa.func.coalesce(sa.func.sum(f.c.size), 0))
            .join(f, f.c.id == r.c.file_id)
            .where(*self._due_queued(project_id, site, now), no_usable)
            .group_by(somewhere)
        )
        out: dict[str, tuple[int, int]] = {}
        with self._read() as conn:
            for held, n, size in conn.execute(q):
                out["unusable" if held else "nowhere"] = (int(n), int(size))
        return out

    def site_health_events(self, actor_prefix: str, kinds: Sequence[str], limit: int = 500) -> list[Any]:
        """The latest site availability events written by this machine's workers (newest first)."""
        e = s.events
        q = (
            sa.select(e.c.at, e.c.kind, e.c.site, e.c.message)
            .where(e.c.kind.in_(list(kinds)), e.c.actor.startswith(actor_prefix, autoescape=True))
            .order_by(e.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return list(conn.execute(q).all())
