"""State store, worker side: claiming work under a lease, renewing leases with progress, writing
outcomes in batches, and returning the work of crashed workers to the queue.

A claim is one statement: the rows are chosen through ``ix_replicas_queue`` (one index range per
project and site, already in priority order) and leased in the same UPDATE. On PostgreSQL the
choice uses ``FOR UPDATE SKIP LOCKED`` so concurrent workers take disjoint batches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from sitesync.state import schema as s
from sitesync.state.base import StoreBase, chunked, event, ids_in, ids_param
from sitesync.state.catalog import seen_values
from sitesync.state.physical import PhysicalMixin
from sitesync.state.records import ClaimedReplica, Outcome
from sitesync.state.summaries import refresh_pairs, representation_pairs


def requeue_leased(
    conn: sa.Connection,
    where: list[sa.ColumnElement[bool]],
    now: float,
    last_error: str,
    message: Callable[[str], str],
    *,
    lock: bool,
) -> int:
    """Put the transfers in progress matching ``where`` back in the queue (leases cleared, no
    attempt counted), with a ``lease_expired`` event each whose text ``message(owner)`` gives.
    ``lock``: PostgreSQL, skip rows another transaction holds. Returns how many."""
    r = s.replicas
    q = sa.select(r.c.id, r.c.file_id, r.c.representation_id, r.c.project_id, r.c.site, r.c.lease_owner).where(
        *where, r.c.status == s.IN_PROGRESS
    )
    if lock:
        q = q.order_by(r.c.id).with_for_update(skip_locked=True)
    rows = conn.execute(q).all()
    for part in chunked([row.id for row in rows]):
        conn.execute(
            r.update()
            .where(r.c.id.in_(part), r.c.status == s.IN_PROGRESS, *where)
            .values(
                status=s.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                bytes_done=0,
                next_attempt_at=now,
                last_error=sa.literal(last_error),
                updated_at=now,
            )
        )
    if not rows:
        return 0
    refresh_pairs(conn, {(row.representation_id, row.site) for row in rows})
    StoreBase._events(
        conn,
        (
            {
                **event(
                    "lease_expired",
                    row.lease_owner or "?",
                    project_id=row.project_id,
                    representation_id=row.representation_id,
                    file_id=row.file_id,
                    site=row.site,
                    message=message(row.lease_owner or "?"),
                ),
                "at": now,
            }
            for row in rows
        ),
    )
    return len(rows)


def _outcome_event(
    kind: str,
    owner: str,
    o: Outcome,
    at: float,
    *,
    source_site: str | None,
    nbytes: int | None = None,
    duration: float | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The history row of one recorded outcome, stamped with the outcome batch's time."""
    row = event(
        kind,
        owner,
        project_id=o.project_id,
        representation_id=o.representation_id,
        file_id=o.file_id,
        site=o.site,
        source_site=source_site,
        nbytes=nbytes,
        duration=duration,
        message=message,
    )
    return {**row, "at": at}


class QueueMixin(PhysicalMixin):
    def claim(
        self,
        project_id: int,
        site: str,
        source_sites: Sequence[str],
        owner: str,
        limit: int,
        lease_seconds: float,
        now: float | None = None,
        *,
        refresh_summaries: bool = True,
        alternatives: Sequence[str] = (),
    ) -> list[ClaimedReplica]:
        """Lease up to ``limit`` queued replicas of ``site`` in ``project_id`` whose file has a
        verified copy on one of ``source_sites``, highest priority first. A file being copied to
        one of the site's ``alternatives`` (the same storage) right now is left for that transfer:
        one storage gets one transfer, and the alternatives rule records the rest.

        ``refresh_summaries=False`` leaves the Sync Queue summaries of the leased files to a
        following ``refresh_summaries()`` call, so the claim's write transaction (which competing
        workers wait for) stays short; the worker does that."""
        if limit <= 0 or not source_sites:
            return []
        now = time.time() if now is None else now
        params = {
            "b_project_id": project_id,
            "b_site": site,
            "b_sources": list(source_sites),
            "b_now": now,
            "b_limit": limit,
            "b_owner": owner,
            "b_expires": now + lease_seconds,
        }
        if alternatives:
            params["b_alts"] = list(alternatives)
        statements = self._claim_statements(bool(alternatives))
        with self._write() as conn:
            if self.is_postgres:
                leased = conn.execute(statements[0], params).all()
            else:
                # SQLite: the write lock is held since BEGIN IMMEDIATE, so choosing the rows and
                # then leasing them in a second statement cannot race with another writer
                choose, lease = statements
                leased = conn.execute(choose, params).all()
                if leased:
                    conn.execute(lease, {**params, "b_ids": json.dumps([row.id for row in leased])})
            if refresh_summaries:
                refresh_pairs(conn, {(row.representation_id, site) for row in leased})
        out = [
            ClaimedReplica(
                replica_id=row.id,
                file_id=row.file_id,
                representation_id=row.representation_id,
                project_id=project_id,
                site=site,
                path=row.path,
                size=row.size,
                hash_algo=row.hash_algo,
                hash=row.hash,
                attempts=row.attempts,
                priority=row.priority,
                sources=tuple(sorted(row.holders.split(","))) if row.holders else (),
                seen_size=row.seen_size,
                seen_hash=row.seen_hash,
                seen_mtime=row.seen_mtime,
                seen_ref=row.provider_ref,
            )
            for row in leased
            if row.path is not None  # the file was dropped by a re-publish meanwhile
        ]
        out.sort(key=lambda c: (-c.priority, c.replica_id))
        return out

    def _claim_statements(self, with_alternatives: bool = False) -> tuple[sa.Executable, ...]:
        """The claim's statements, built once per store and variant (SQLAlchemy caches their
        compiled form).

        PostgreSQL: ONE statement (one round trip) that chooses the batch through
        ``ix_replicas_queue`` with ``FOR UPDATE SKIP LOCKED`` (concurrent workers take disjoint
        batches), leases it and returns what a transfer needs: the file's path, size and hash and
        the sites holding a verified copy. SQLite: the same choice as a SELECT, then the lease.
        """
        cache: dict[bool, tuple[sa.Executable, ...]] = self.__dict__.setdefault("_claim_cache", {})
        cached = cache.get(with_alternatives)
        if cached is not None:
            return cached
        r, f = s.replicas, s.files
        q, src, held, alt = r.alias("q"), r.alias("src"), r.alias("held"), r.alias("alt")
        queued = [
            q.c.project_id == sa.bindparam("b_project_id"),
            q.c.site == sa.bindparam("b_site"),
            # literal constants so SQLite can prove the partial index applies
            q.c.status == sa.literal_column(f"'{s.QUEUED}'"),
            q.c.paused == sa.false(),
            q.c.next_attempt_at <= sa.bindparam("b_now"),
            sa.exists().where(
                src.c.file_id == q.c.file_id,
                src.c.status == s.PRESENT,
                src.c.site.in_(sa.bindparam("b_sources", expanding=True)),
            ),
        ]
        if with_alternatives:
            queued.append(
                ~sa.exists().where(
                    alt.c.file_id == q.c.file_id,
                    alt.c.site.in_(sa.bindparam("b_alts", expanding=True)),
                    alt.c.status == s.IN_PROGRESS,
                )
            )
        lease = {
            "status": s.IN_PROGRESS,
            "lease_owner": sa.bindparam("b_owner"),
            "lease_expires_at": sa.bindparam("b_expires"),
            "bytes_done": 0,
            "updated_at": sa.bindparam("b_now"),
        }

        def holders(file_id: sa.ColumnElement[int]) -> sa.Label[Any]:
            return (
                sa.select(sa.func.aggregate_strings(held.c.site, ","))
                .where(held.c.file_id == file_id, held.c.status == s.PRESENT)
                .scalar_subquery()
                .label("holders")
            )

        statements: tuple[sa.Executable, ...]
        if self.is_postgres:
            chosen = (
                sa.select(q.c.id)
                .where(*queued)
                .order_by(q.c.priority.desc(), q.c.id)
                .limit(sa.bindparam("b_limit"))
                .with_for_update(skip_locked=True, of=q)
                .cte("chosen")
            )
            statements = (
                r.update()
                .where(r.c.id == chosen.c.id, r.c.status == s.QUEUED, f.c.id == r.c.file_id)
                .values(**lease)
                .returning(
                    r.c.id,
                    r.c.file_id,
                    r.c.representation_id,
                    r.c.attempts,
                    r.c.priority,
                    f.c.path,
                    f.c.size,
                    f.c.hash_algo,
                    f.c.hash,
                    holders(r.c.file_id),
                    r.c.seen_size,
                    r.c.seen_hash,
                    r.c.seen_mtime,
                    r.c.provider_ref,
                ),
            )
        else:
            choose = (
                sa.select(
                    q.c.id,
                    q.c.file_id,
                    q.c.representation_id,
                    q.c.attempts,
                    q.c.priority,
                    f.c.path,
                    f.c.size,
                    f.c.hash_algo,
                    f.c.hash,
                    holders(q.c.file_id),
                    q.c.seen_size,
                    q.c.seen_hash,
                    q.c.seen_mtime,
                    q.c.provider_ref,
                )
                .join(f, f.c.id == q.c.file_id)
                .where(*queued)
                .order_by(q.c.priority.desc(), q.c.id)
                .limit(sa.bindparam("b_limit"))
            )
            ids: sa.Select[Any] = sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam("b_ids")))
            statements = (choose, r.update().where(r.c.id.in_(ids), r.c.status == s.QUEUED).values(**lease))
        cache[with_alternatives] = statements
        return statements

    def refresh_summaries(self, pairs: Iterable[tuple[int, str]]) -> None:
        """Bring the Sync Queue summaries of these (representation, site) pairs up to date."""
        pairs = set(pairs)
        if pairs:
            with self._write() as conn:
                refresh_pairs(conn, pairs)

    def renew_leases(
        self, owner: str, progress: Mapping[int, int], lease_seconds: float, now: float | None = None
    ) -> set[int]:
        """Extend this worker's leases and record in-flight bytes. Returns replica ids whose lease
        was lost (re-published, reset, or expired and taken over): their transfer's result will
        be discarded."""
        if not progress:
            return set()
        now = time.time() if now is None else now
        r = s.replicas
        ids = list(progress)
        with self._write() as conn:
            owned: set[int] = set()
            pairs: set[tuple[int, str]] = set()
            for part in chunked(ids):
                for row in conn.execute(
                    sa.select(r.c.id, r.c.representation_id, r.c.site).where(
                        r.c.id.in_(part), r.c.lease_owner == owner, r.c.status == s.IN_PROGRESS
                    )
                ):
                    owned.add(row.id)
                    pairs.add((row.representation_id, row.site))
            if owned:
                conn.execute(
                    r.update()
                    .where(r.c.id == sa.bindparam("rid"))
                    .values(lease_expires_at=now + lease_seconds, bytes_done=sa.bindparam("done"))
                    .execution_options(synchronize_session=False),
                    [{"rid": rid, "done": progress[rid]} for rid in sorted(owned)],
                )
                refresh_pairs(conn, pairs)
        return set(ids) - owned

    def record_outcomes(self, owner: str, outcomes: Sequence[Outcome], now: float | None = None) -> int:
        """Write a batch of transfer outcomes in one transaction. An outcome whose lease this worker
        no longer holds is discarded. Returns how many were applied."""
        if not outcomes:
            return 0
        now = time.time() if now is None else now
        r = s.replicas
        by_id = {o.replica_id: o for o in outcomes}
        stmts = self._outcome_statements()
        with self._write() as conn:
            owned = conn.execute(stmts["owned"], {"b_owner": owner, "b_ids": ids_param(by_id, self.dialect)})
            held = {row.id for row in owned}
            present: dict[str | None, list[int]] = {}  # source site -> replica ids
            failed, queued, released, events = [], [], [], []
            alt_rows: list[Outcome] = []
            fingerprints: list[tuple[int, float | None, str | None]] = []
            lost_sources: list[Outcome] = []
            for rid, o in by_id.items():
                if rid not in held:
                    continue
                if o.kind == "present":
                    present.setdefault(None if o.adopted else o.source_site, []).append(rid)
                    fingerprints.append((rid, o.mtime, o.ref))
                    if o.adopted:
                        message = "the expected content was already there (same size and hash): recorded, not copied"
                        events.append(_outcome_event("adopted", owner, o, now, source_site=None, message=message))
                    else:
                        events.append(
                            _outcome_event(
                                "transfer",
                                owner,
                                o,
                                now,
                                source_site=o.source_site,
                                nbytes=o.bytes,
                                duration=o.duration,
                            )
                        )
                    if o.alternatives:
                        alt_rows.append(o)
                elif o.kind in ("retry", "failed"):  # decided by the worker (errors.decide)
                    row = {"rid": rid, "n": o.attempts, "err": (o.error or "unknown error")[:4000], "at": now}
                    if o.kind == "failed":
                        failed.append(row)
                    else:
                        queued.append({**row, "next": now + max(0.0, o.delay)})
                    message = f"{o.note or f'attempt {o.attempts}'}: {row['err']}"
                    events.append(
                        _outcome_event(
                            "failure",
                            owner,
                            o,
                            now,
                            source_site=o.source_site,
                            nbytes=o.bytes,
                            duration=o.duration,
                            message=message,
                        )
                    )
                elif o.kind in ("release", "source_lost"):  # put back untouched (a site condition,
                    # the worker stopping, or the source copy lost: the file is re-planned)
                    released.append({"rid": rid, "next": now + max(0.0, o.delay), "err": o.error})
                    if o.kind == "source_lost":
                        lost_sources.append(o)
                    elif o.error:
                        events.append(
                            _outcome_event("deferred", owner, o, now, source_site=o.source_site, message=o.error[:4000])
                        )
                else:
                    raise ValueError(f"unknown outcome kind {o.kind!r}")
            common_clear = {"lease_owner": None, "lease_expires_at": None, "updated_at": now}
            if present:
                conn.execute(
                    stmts["present"],
                    [
                        {"b_src": src, "b_now": now, "b_ids": ids_param(ids, self.dialect)}
                        for src, ids in present.items()
                    ],
                )
            if failed:
                conn.execute(
                    r.update()
                    .where(r.c.id == sa.bindparam("rid"))
                    .values(
                        status=s.FAILED,
                        attempts=sa.bindparam("n"),
                        last_error=sa.bindparam("err"),
                        last_failed_at=sa.bindparam("at"),
                        bytes_done=0,
                        **common_clear,
                    ),
                    failed,
                )
            if queued:
                conn.execute(
                    r.update()
                    .where(r.c.id == sa.bindparam("rid"))
                    .values(
                        status=s.QUEUED,
                        attempts=sa.bindparam("n"),
                        last_error=sa.bindparam("err"),
                        last_failed_at=sa.bindparam("at"),
                        next_attempt_at=sa.bindparam("next"),
                        bytes_done=0,
                        **common_clear,
                    ),
                    queued,
                )
            if released:
                conn.execute(
                    r.update()
                    .where(r.c.id == sa.bindparam("rid"))
                    .values(
                        status=s.QUEUED,
                        next_attempt_at=sa.bindparam("next"),
                        last_error=sa.bindparam("err"),
                        bytes_done=0,
                        **common_clear,
                    ),
                    released,
                )
            self._record_fingerprints(conn, fingerprints)
            for o in alt_rows:
                self._record_alternatives(conn, o, now)
            touched = {(o.representation_id, o.site) for rid, o in by_id.items() if rid in held}
            touched.update((o.representation_id, alt) for o in alt_rows for alt in o.alternatives)
            landed = [by_id[rid].file_id for ids in present.values() for rid in ids]
            if landed:  # files waiting for a source (or lost elsewhere) have one again
                touched |= self._settle_sources(conn, landed, now, gained_only=True)
            reps_lost: set[int] = set()
            for o in lost_sources:
                # the source copy is gone or changed: the location log is corrected at once
                if o.source_site is None:
                    continue
                _result, reps = self._lose_copies(
                    conn,
                    o.source_site,
                    o.lost_alternatives,
                    [(o.file_id, None, o.error or f"the copy on {o.source_site} is missing")],
                    owner,
                    "source_missing",
                    check_since=False,
                )
                reps_lost |= reps | {o.representation_id}
            if reps_lost:
                touched |= representation_pairs(conn, reps_lost)
            refresh_pairs(conn, touched)
            self._events(conn, events)
        return sum(1 for rid in by_id if rid in held)

    def _outcome_statements(self) -> dict[str, sa.Executable]:
        """record_outcomes' hot statements, built once: which of a batch's replicas this worker
        still holds, and the batch of successes as one UPDATE per source site."""
        cached = getattr(self, "_outcome_cache", None)
        if cached is not None:
            return cached
        r, f = s.replicas, s.files
        owned = sa.select(r.c.id).where(
            ids_in(r.c.id, self.dialect), r.c.lease_owner == sa.bindparam("b_owner"), r.c.status == s.IN_PROGRESS
        )
        if self.is_postgres:
            # row locks in ascending id order, like every other writer (see catalog._lock_replicas)
            owned = owned.order_by(r.c.id).with_for_update()
        present = (
            r.update()
            .where(ids_in(r.c.id, self.dialect))
            .values(
                status=s.PRESENT,
                attempts=0,
                last_error=None,
                last_failed_at=None,
                present_since=sa.bindparam("b_now"),
                # a verified copy holds exactly the catalog's bytes
                bytes_done=sa.select(f.c.size).where(f.c.id == r.c.file_id).scalar_subquery(),
                source_site=sa.bindparam("b_src"),
                lease_owner=None,
                lease_expires_at=None,
                updated_at=sa.bindparam("b_now"),
                **seen_values(),
            )
        )
        statements: dict[str, sa.Executable] = {"owned": owned, "present": present}
        self._outcome_cache = statements
        return statements

    def _record_alternatives(self, conn: sa.Connection, o: Outcome, now: float) -> None:
        """A copy landed on a site whose alternatives are the same storage: they hold it too."""
        r = s.replicas
        for alt in o.alternatives:
            updated = conn.execute(
                r.update()
                .where(r.c.file_id == o.file_id, r.c.site == alt, r.c.status.in_(s.NOT_HELD))
                .values(
                    status=s.PRESENT,
                    attempts=0,
                    last_error=None,
                    present_since=now,
                    source_site=o.site,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                    **seen_values(),
                )
            ).rowcount
            if updated:
                continue
            exists = conn.execute(sa.select(r.c.id).where(r.c.file_id == o.file_id, r.c.site == alt)).first()
            if exists is None:
                conn.execute(
                    r.insert().values(
                        file_id=o.file_id,
                        representation_id=o.representation_id,
                        project_id=o.project_id,
                        site=alt,
                        status=s.PRESENT,
                        priority=s.DEFAULT_PRIORITY,
                        paused=False,
                        attempts=0,
                        next_attempt_at=now,
                        present_since=now,
                        bytes_done=0,
                        source_site=o.site,
                        updated_at=now,
                        seen_size=sa.select(s.files.c.size).where(s.files.c.id == o.file_id).scalar_subquery(),
                        seen_hash=sa.select(s.files.c.hash_algo + ":" + s.files.c.hash)
                        .where(s.files.c.id == o.file_id)
                        .scalar_subquery(),
                    )
                )

    def expire_leases(self, now: float | None = None) -> int:
        """Return transfers whose worker stopped renewing its lease (crashed, killed) to the queue.
        The attempt is not counted: the file was never shown to be bad."""
        now = time.time() if now is None else now
        r = s.replicas
        with self._write() as conn:
            return requeue_leased(
                conn,
                [r.c.lease_owner.is_not(None), r.c.lease_expires_at < now],
                now,
                "transfer interrupted: its worker stopped (lease expired)",
                lambda owner: f"worker {owner} stopped during the transfer; queued again",
                lock=self.is_postgres,
            )
