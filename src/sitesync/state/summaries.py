"""Per-representation, per-site summaries (``site_states``) and per-representation summaries
(``representation_states``), kept current inside the transactions that change replicas.

Every state-store write that inserts, updates or deletes replicas ends with one call of
``refresh_pairs`` (the (representation, site) pairs it touched), ``refresh_representations``
(every site of some representations) or ``refresh_replicas``. The refresh re-aggregates those
pairs from ``replicas`` through ``ix_replicas_representation_site`` and then the touched
representations from their site rows, so a summary is always exactly what its replicas say; there
are no deltas that could drift. ``tests/conftest.py`` checks after every studio test that the
stored summaries equal a fresh aggregate, so a write path that forgets to refresh is caught.

On PostgreSQL concurrent refreshes are serialised on the summary rows: one upsert inserts a
placeholder where a row is missing and locks every row before anything is aggregated, so the aggregate sees
every transaction that refreshed them before. Locks are taken in one order everywhere (all site
rows sorted by (representation, site), then all representation rows sorted): no deadlocks. So call
the refresh once, last in the transaction, after the replicas changed. SQLite runs one writer at a
time and needs none of that.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.base import chunked
from sitesync.state.database import upsert_insert
from sitesync.status_rollup import summarize_site_state

Pair = tuple[int, str]
_CHUNK = 400  # pairs per statement: well inside SQLite's bound-parameter limit

_COUNT_COLUMNS = {
    s.PRESENT: "files_present",
    s.QUEUED: "files_queued",
    s.IN_PROGRESS: "files_in_progress",
    s.FAILED: "files_failed",
    s.REMOVING: "files_removing",
    s.MISSING: "files_missing",
    s.NO_SOURCE: "files_no_source",
}
# the statuses whose last error a summary shows
_ERROR_STATUSES = (s.FAILED, s.QUEUED, s.MISSING, s.NO_SOURCE)


@dataclass(slots=True)
class _Acc:
    """The replicas of one (representation, site), aggregated."""

    counts: dict[str, int] = field(default_factory=dict)
    paused: bool = False  # a queued file is paused (the status word says "paused")
    held: bool = False  # the representation is paused on the site (whatever its files' states)
    bytes_present: int = 0
    bytes_in_flight: int = 0
    priority: int | None = None
    attempts: int = 0
    last_error: str | None = None
    updated_at: float = 0.0


def _aggregate(
    conn: Connection, rep_ids: Sequence[int], sites: Sequence[str] | None
) -> tuple[dict[Pair, _Acc], dict[int, Any]]:
    """The replicas of the pairs aggregated, and the facts of their representations."""
    r, f, rep = s.replicas, s.files, s.representations
    q = (
        sa.select(
            r.c.representation_id,
            sa.func.max(rep.c.project_id).label("project_id"),
            sa.func.max(rep.c.file_count).label("file_count"),
            sa.func.max(rep.c.total_size).label("total_size"),
            r.c.site,
            r.c.status,
            sa.func.count().label("n"),
            sa.func.sum(sa.case((r.c.paused, 1), else_=0)).label("n_paused"),
            sa.func.sum(f.c.size).label("size"),
            sa.func.sum(r.c.bytes_done).label("done"),
            sa.func.max(r.c.priority).label("priority"),
            sa.func.max(r.c.attempts).label("attempts"),
            sa.func.max(r.c.last_error).label("error"),
            sa.func.max(r.c.updated_at).label("updated"),
        )
        .join(f, f.c.id == r.c.file_id)
        .join(rep, rep.c.id == r.c.representation_id)
        .where(r.c.representation_id.in_(list(rep_ids)))
        .group_by(r.c.representation_id, r.c.site, r.c.status)
    )
    if sites is not None:
        q = q.where(r.c.site.in_(list(sites)))
    out: dict[Pair, _Acc] = {}
    facts: dict[int, Any] = {}
    for row in conn.execute(q):
        facts[row.representation_id] = row
        acc = out.setdefault((row.representation_id, row.site), _Acc())
        acc.counts[row.status] = int(row.n)
        if row.status == s.PRESENT:
            acc.bytes_present += int(row.size or 0)
        elif row.status == s.IN_PROGRESS:
            acc.bytes_in_flight += int(row.done or 0)
        elif row.status == s.QUEUED and row.n_paused:
            acc.paused = True
        if row.n_paused:
            acc.held = True
        if row.priority is not None:
            acc.priority = max(acc.priority or 0, int(row.priority))
        acc.attempts = max(acc.attempts, int(row.attempts or 0))
        if row.error and row.status in _ERROR_STATUSES:
            acc.last_error = max(acc.last_error or "", row.error)
        acc.updated_at = max(acc.updated_at, float(row.updated or 0.0))
    return out, facts


def _row(rep_id: int, site: str, acc: _Acc, rep: Any) -> dict[str, Any]:
    total = int(rep.total_size or 0)
    present = acc.counts.get(s.PRESENT, 0)
    if total > 0:
        progress = (acc.bytes_present + acc.bytes_in_flight) / total
    else:
        progress = present / rep.file_count if rep.file_count else 0.0
    row: dict[str, Any] = {
        "representation_id": rep_id,
        "site": site,
        "project_id": rep.project_id,
        "status": summarize_site_state(acc, rep.file_count),
        "bytes_present": acc.bytes_present,
        "bytes_in_flight": acc.bytes_in_flight,
        "progress": max(0.0, min(1.0, progress)),
        "priority": acc.priority,
        "attempts": acc.attempts,
        "last_error": acc.last_error[:4000] if acc.last_error else None,
        "updated_at": acc.updated_at,
        "paused": acc.held,
        "total_size": total,
    }
    for status, column in _COUNT_COLUMNS.items():
        row[column] = acc.counts.get(status, 0)
    return row


def compute(conn: Connection, pairs: Sequence[Pair]) -> dict[Pair, dict[str, Any]]:
    """What the summary rows of ``pairs`` should be (pairs without replicas are absent)."""
    out: dict[Pair, dict[str, Any]] = {}
    wanted = set(pairs)
    for part in chunked(sorted(wanted), _CHUNK):
        rep_ids = sorted({p[0] for p in part})
        sites = sorted({p[1] for p in part})
        aggregated, facts = _aggregate(conn, rep_ids, sites)
        for pair, acc in aggregated.items():
            if pair in wanted:
                out[pair] = _row(pair[0], pair[1], acc, facts[pair[0]])
    return out


@functools.cache
def _upsert_statement(dialect: str, table_name: str) -> Any:
    """One-row ``INSERT ... ON CONFLICT DO UPDATE`` for executemany: compiled once and cached (a
    multi-row VALUES statement is compiled anew for every batch, which cost more than the write)."""
    table = s.metadata.tables[table_name]
    stmt = upsert_insert(dialect, table)
    update = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=update)


@functools.cache
def _lock_statement(table_name: str) -> Any:
    """PostgreSQL one-row "make sure it exists and lock it" statement, for executemany."""
    table = s.metadata.tables[table_name]
    indexed = {c.name for index in table.indexes for c in index.columns} | {c.name for c in table.primary_key}
    # a column no index covers: the no-op update stays a heap-only tuple update
    spare = next(c for c in table.columns if c.name not in indexed)
    return upsert_insert("postgresql", table).on_conflict_do_update(
        index_elements=list(table.primary_key.columns), set_={spare.name: spare}
    )


def refresh_pairs(conn: Connection, pairs: Iterable[Pair]) -> None:
    """Re-aggregate the summaries of ``pairs`` from their replicas (drop those without replicas),
    then the summaries of their representations, then add what changed to the per-site counters."""
    t = s.site_states
    ordered = sorted(set(pairs))
    deltas: dict[tuple[int, str], dict[str, int]] = {}
    for part in chunked(ordered, _CHUNK):
        key = sa.tuple_(t.c.representation_id, t.c.site)
        _lock(conn, t, [_placeholder(rep_id, site) for rep_id, site in part])
        # read after the lock: no other transaction can change these rows until this one ends
        _add_counts(deltas, _stored(conn, part), -1)
        rows = compute(conn, part)
        _upsert(conn, t, list(rows.values()))
        gone = [p for p in part if p not in rows]
        if gone:
            conn.execute(t.delete().where(key.in_(gone)))
        _add_counts(deltas, rows.values(), 1)
    _refresh_overall(conn, sorted({rep_id for rep_id, _site in ordered}))
    _apply_counts(conn, deltas)


# what ``site_counts`` adds up from each ``site_states`` row
COUNTED = (*_COUNT_COLUMNS.values(), "bytes_present", "total_size")
# counters rows a (project, site) is spread over on PostgreSQL (SQLite has one writer: one row)
COUNTER_SLOTS = 8


def _stored(conn: Connection, part: Sequence[Pair]) -> list[Any]:
    """The stored summary rows of ``part`` that count (not this transaction's lock placeholders)."""
    t = s.site_states
    wanted = set(part)
    rows = conn.execute(
        sa.select(t.c.representation_id, t.c.site, t.c.project_id, *(t.c[c] for c in COUNTED)).where(
            t.c.representation_id.in_(sorted({p[0] for p in part})),
            t.c.site.in_(sorted({p[1] for p in part})),
            t.c.project_id != 0,
        )
    ).all()
    return [row._mapping for row in rows if (row.representation_id, row.site) in wanted]


def _add_counts(deltas: dict[tuple[int, str], dict[str, int]], rows: Iterable[Any], sign: int) -> None:
    for row in rows:
        delta = deltas.setdefault((row["project_id"], row["site"]), dict.fromkeys(("representations", *COUNTED), 0))
        delta["representations"] += sign
        for column in COUNTED:
            delta[column] += sign * int(row[column] or 0)


@functools.cache
def _count_statement(dialect: str) -> Any:
    """One-row "add these deltas to a counters row" upsert, for executemany."""
    t = s.site_counts
    stmt = upsert_insert(dialect, t)
    added = {c.name: t.c[c.name] + stmt.excluded[c.name] for c in t.columns if not c.primary_key}
    return stmt.on_conflict_do_update(index_elements=list(t.primary_key.columns), set_=added)


def _slot(conn: Connection) -> int:
    """This database session's counters slot: fixed per connection, so one transaction takes each
    counters row it changes once, in (project, site) order."""
    if conn.dialect.name != "postgresql":
        return 0
    info = conn.connection.info
    if "sitesync_counter_slot" not in info:
        info["sitesync_counter_slot"] = random.randrange(COUNTER_SLOTS)
    return int(info["sitesync_counter_slot"])


def _apply_counts(conn: Connection, deltas: dict[tuple[int, str], dict[str, int]]) -> None:
    slot = _slot(conn)
    rows = [
        {"project_id": project_id, "site": site, "slot": slot, **delta}
        for (project_id, site), delta in sorted(deltas.items())
        if any(delta.values())
    ]
    if rows:
        conn.execute(_count_statement(conn.dialect.name), rows)


def count_new_representations(conn: Connection, project_id: int, n: int) -> None:
    """Add ``n`` new representations of ``project_id`` to ``project_counts`` (in the transaction
    that inserts them)."""
    t = s.project_counts
    stmt = upsert_insert(conn.dialect.name, t)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.c.project_id, t.c.slot], set_={"representations": t.c.representations + n}
    )
    conn.execute(stmt, {"project_id": project_id, "slot": _slot(conn), "representations": n})


def project_representations(conn: Connection, project_id: int) -> int:
    """How many representations the project has, from ``project_counts``."""
    t = s.project_counts
    q = sa.select(sa.func.coalesce(sa.func.sum(t.c.representations), 0)).where(t.c.project_id == project_id)
    return int(conn.execute(q).scalar_one())


def _project_recount(conn: Connection) -> dict[int, int]:
    r = s.representations
    q = sa.select(r.c.project_id, sa.func.count().label("n")).group_by(r.c.project_id)
    return {row.project_id: int(row.n) for row in conn.execute(q)}


def _project_stored(conn: Connection) -> dict[int, int]:
    t = s.project_counts
    q = sa.select(t.c.project_id, sa.func.sum(t.c.representations).label("n")).group_by(t.c.project_id)
    return {row.project_id: int(row.n) for row in conn.execute(q) if row.n}


def recount(conn: Connection) -> dict[tuple[int, str], dict[str, int]]:
    """(project, site) -> the counters ``site_counts`` should hold, summed afresh from ``site_states``."""
    t = s.site_states
    q = sa.select(
        t.c.project_id,
        t.c.site,
        sa.func.count().label("representations"),
        *(sa.func.sum(t.c[c]).label(c) for c in COUNTED),
    ).group_by(t.c.project_id, t.c.site)
    return {
        (row.project_id, row.site): {c: int(row._mapping[c] or 0) for c in ("representations", *COUNTED)}
        for row in conn.execute(q)
    }


def stored_counts(conn: Connection) -> dict[tuple[int, str], dict[str, int]]:
    """(project, site) -> the counters ``site_counts`` holds (its slots summed; all-zero left out)."""
    t = s.site_counts
    columns = [c.name for c in t.columns if not c.primary_key]
    q = sa.select(t.c.project_id, t.c.site, *(sa.func.sum(t.c[c]).label(c) for c in columns)).group_by(
        t.c.project_id, t.c.site
    )
    out = {}
    for row in conn.execute(q):
        counts = {c: int(row._mapping[c] or 0) for c in columns}
        if any(counts.values()):
            out[(row.project_id, row.site)] = counts
    return out


def rebuild_counts(conn: Connection) -> None:
    """Recompute ``site_counts`` from ``site_states`` and ``project_counts`` from ``representations``
    (after a bulk load that bypassed the refresh)."""
    conn.execute(s.project_counts.delete())
    projects = [{"project_id": p, "slot": 0, "representations": n} for p, n in sorted(_project_recount(conn).items())]
    if projects:
        conn.execute(s.project_counts.insert(), projects)
    t = s.site_counts
    conn.execute(t.delete())
    rows = [
        {"project_id": project_id, "site": site, "slot": 0, **counts}
        for (project_id, site), counts in sorted(recount(conn).items())
    ]
    if rows:
        conn.execute(t.insert(), rows)


def _lock(conn: Connection, table: sa.Table, placeholders: list[dict[str, Any]]) -> None:
    """PostgreSQL: make sure the rows exist and lock them, in the (sorted) order given: a new row
    is inserted (locked until commit), an existing one gets a no-op update (which locks it,
    waiting for whoever holds it). Rows are processed in order, so locks are taken in order."""
    if conn.dialect.name != "postgresql" or not placeholders:
        return
    conn.execute(_lock_statement(table.name), placeholders)


def _upsert(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    conn.execute(_upsert_statement(conn.dialect.name, table.name), rows)


# the order in which a representation's site statuses need attention: the first one found wins
ATTENTION = ("lost", "failed", "no_source", "removing", "in_progress", "queued", "paused", "partial", "present")
_ATTENTION_RANK = {status: i for i, status in enumerate(ATTENTION)}


def compute_overall(conn: Connection, rep_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What the ``representation_states`` rows of ``rep_ids`` should be, from their site rows."""
    t = s.site_states
    out: dict[int, dict[str, Any]] = {}
    for part in chunked(list(rep_ids), _CHUNK):
        rows = conn.execute(
            sa.select(
                t.c.representation_id, t.c.project_id, t.c.site, t.c.status, t.c.priority, t.c.updated_at, t.c.paused
            ).where(t.c.representation_id.in_(part))
        ).all()
        # the first site in attention order (then by name) gives the status
        for row in sorted(rows, key=lambda x: (x.representation_id, _ATTENTION_RANK.get(x.status, 99), x.site)):
            entry = out.get(row.representation_id)
            if entry is None:
                out[row.representation_id] = {
                    "representation_id": row.representation_id,
                    "project_id": row.project_id,
                    "status": row.status,
                    "status_site": row.site,
                    "priority": row.priority,
                    "updated_at": row.updated_at,
                    "paused": bool(row.paused),
                }
                continue
            entry["paused"] = entry["paused"] or bool(row.paused)
            if row.priority is not None and (entry["priority"] is None or row.priority > entry["priority"]):
                entry["priority"] = row.priority
            entry["updated_at"] = max(entry["updated_at"], row.updated_at)
    return out


def _refresh_overall(conn: Connection, rep_ids: Sequence[int]) -> None:
    t = s.representation_states
    for part in chunked(list(rep_ids), _CHUNK):
        placeholders = [
            {
                "representation_id": i,
                "project_id": 0,
                "status": "none",
                "status_site": "",
                "priority": None,
                "updated_at": 0.0,
                "paused": False,
            }
            for i in part
        ]
        _lock(conn, t, placeholders)
        rows = compute_overall(conn, part)
        _upsert(conn, t, list(rows.values()))
        gone = [i for i in part if i not in rows]
        if gone:
            conn.execute(t.delete().where(t.c.representation_id.in_(gone)))


def _placeholder(rep_id: int, site: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "representation_id": rep_id,
        "site": site,
        "project_id": 0,
        "status": "none",
        "bytes_present": 0,
        "bytes_in_flight": 0,
        "progress": 0.0,
        "priority": None,
        "attempts": 0,
        "last_error": None,
        "updated_at": 0.0,
        "paused": False,
        "total_size": 0,
    }
    row.update(dict.fromkeys(_COUNT_COLUMNS.values(), 0))
    return row


def representation_pairs(conn: Connection, rep_ids: Iterable[int]) -> set[Pair]:
    """Every (representation, site) with replicas or a summary row."""
    r, t = s.replicas, s.site_states
    pairs: set[Pair] = set()
    for part in chunked(sorted(set(rep_ids)), _CHUNK):
        pairs.update(
            (row.representation_id, row.site)
            for row in conn.execute(
                sa.select(r.c.representation_id, r.c.site).where(r.c.representation_id.in_(part)).distinct()
            )
        )
        pairs.update(
            (row.representation_id, row.site)
            for row in conn.execute(sa.select(t.c.representation_id, t.c.site).where(t.c.representation_id.in_(part)))
        )
    return pairs


def refresh_representations(conn: Connection, rep_ids: Iterable[int]) -> None:
    """Re-aggregate every site of these representations."""
    refresh_pairs(conn, representation_pairs(conn, rep_ids))


def refresh_replicas(conn: Connection, replica_ids: Iterable[int]) -> None:
    """Re-aggregate the pairs these replicas belong to."""
    r = s.replicas
    pairs: set[Pair] = set()
    for part in chunked(sorted(set(replica_ids)), _CHUNK):
        pairs.update(
            (row.representation_id, row.site)
            for row in conn.execute(sa.select(r.c.representation_id, r.c.site).where(r.c.id.in_(part)))
        )
    refresh_pairs(conn, pairs)


def drift(conn: Connection, rep_ids: Sequence[int] | None = None) -> list[str]:
    """Differences between the stored summaries and a fresh aggregate (empty when consistent)."""
    t = s.site_states
    if rep_ids is None:
        rep_ids = list(conn.execute(sa.select(s.representations.c.id)).scalars())
    problems = []
    for part in chunked(sorted(rep_ids), _CHUNK):
        pairs = sorted(representation_pairs(conn, part))
        expected = compute(conn, pairs)
        stored = {
            (row.representation_id, row.site): dict(row._mapping)
            for row in conn.execute(sa.select(t).where(t.c.representation_id.in_(part)))
        }
        for pair in sorted(set(expected) | set(stored)):
            want, have = expected.get(pair), stored.get(pair)
            if want != have:
                problems.append(f"{pair}: stored {have} != aggregate {want}")
        o = s.representation_states
        overall = compute_overall(conn, part)
        stored_overall = {
            row.representation_id: dict(row._mapping)
            for row in conn.execute(sa.select(o).where(o.c.representation_id.in_(part)))
        }
        for rep_id in sorted(set(overall) | set(stored_overall)):
            if overall.get(rep_id) != stored_overall.get(rep_id):
                problems.append(
                    f"representation {rep_id}: stored {stored_overall.get(rep_id)} != {overall.get(rep_id)}"
                )
    expected_counts, counts = recount(conn), stored_counts(conn)
    for key in sorted(set(expected_counts) | set(counts)):
        if expected_counts.get(key) != counts.get(key):
            problems.append(f"site_counts {key}: stored {counts.get(key)} != recount {expected_counts.get(key)}")
    expected_projects, projects = _project_recount(conn), _project_stored(conn)
    if expected_projects != projects:
        problems.append(f"project_counts: stored {projects} != recount {expected_projects}")
    return problems
