"""Generated catalogs for the scale benchmarks: millions of representations, files and replicas
written in a few set-based statements (``INSERT ... SELECT`` over ``generate_series`` on
PostgreSQL, a recursive counter on SQLite), then their summaries and per-site counters computed
in bulk. Nothing here runs in the product; ``benchmarks/scale.py`` calls it.

The shape: representation ``i`` (0-based) lives in folder ``epEE/sqSSS/shHHH0`` (every folder is
different), its product is one of ``PRODUCTS``; each has ``files_per_rep`` files of 8 MB; every
file is present on ``source_site`` and has a replica on ``site`` whose status depends on the
representation: 40 % present, 50 % queued, 8 % failed, 2 % in progress with a live lease; every
tenth representation has a higher priority.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from sitesync.state import schema as s
from sitesync.state.base import chunked
from sitesync.state.summaries import rebuild_counts, refresh_replicas

PRODUCTS = ("renderMain", "animMain", "modelMain", "rigMain", "lookdevMain", "cacheMain", "plateMain")
FILE_SIZE = 8_000_000
ERROR = "site bench: read f.exr: permission denied"


def _series(dialect: str, name: str, count: str) -> str:
    """A FROM item yielding ``name`` = 0 .. count-1."""
    if dialect == "postgresql":
        return f"generate_series(0, {count} - 1) AS {name}_t({name})"
    return f"(WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM c WHERE n + 1 < {count}) SELECT n AS {name} FROM c) AS {name}_t"


def _pad(dialect: str, expr: str, width: int) -> str:
    if dialect == "postgresql":
        return f"lpad(({expr})::text, {width}, '0')"
    return f"printf('%0{width}d', {expr})"


def _hex32(dialect: str, expr: str) -> str:
    if dialect == "postgresql":
        return f"lpad(to_hex({expr}), 32, '0')"
    return f"printf('%032x', {expr})"


def _status(i: str) -> str:
    return (
        f"CASE WHEN {i} % 50 < 20 THEN 'present' WHEN {i} % 50 < 45 THEN 'queued' "
        f"WHEN {i} % 50 < 49 THEN 'failed' ELSE 'in_progress' END"
    )


def _statements(dialect: str, project_name: str) -> list[str]:
    d = dialect
    folder = (
        f"'ep' || {_pad(d, 'i / 10000', 2)} || '/sq' || {_pad(d, '(i / 100) % 100', 3)} "
        f"|| '/sh' || {_pad(d, 'i % 100', 3)} || '0'"
    )
    product = "CASE i % 7 " + " ".join(f"WHEN {n} THEN '{p}'" for n, p in enumerate(PRODUCTS)) + " END"
    reps = f"{_series(d, 'i', ':reps')}"
    files = f"{_series(d, 'i', ':reps')} CROSS JOIN {_series(d, 'k', ':fpr')}"
    fid = ":file0 + i * :fpr + k + 1"
    status = _status("i")
    path = (
        f"'{{root[work]}}/{project_name}/' || {folder} || '/publish/' || {product} "
        f"|| '/v001/exr/f.' || CAST(1001 + k AS TEXT) || '.exr'"
    )
    return [
        "INSERT INTO representations (id, project_id, folder, product, version, name, file_count, total_size, "
        "content_rev, created_at, updated_at, published_by) "
        f"SELECT :rep0 + i + 1, :project, {folder}, {product}, 1, 'exr', :fpr, :fpr * {FILE_SIZE}, 1, :now, :now, "
        f":actor FROM {reps}",
        "INSERT INTO files (id, representation_id, path, path_key, size, hash_algo, hash, updated_at) "
        f"SELECT {fid}, :rep0 + i + 1, {path}, {_hex32(d, fid)}, {FILE_SIZE}, 'xxh3_128', {_hex32(d, fid)}, :now "
        f"FROM {files}",
        # the copy on the source site: replica ids 1, 3, 5, ... after replica0
        "INSERT INTO replicas (id, file_id, representation_id, project_id, site, status, priority, paused, "
        "attempts, next_attempt_at, present_since, bytes_done, seen_size, seen_hash, updated_at) "
        f"SELECT :replica0 + 2 * (i * :fpr + k) + 1, {fid}, :rep0 + i + 1, :project, :source, 'present', "
        f"CASE WHEN i % 10 = 0 THEN 60 ELSE {s.DEFAULT_PRIORITY} END, false, 0, :now, :now, 0, {FILE_SIZE}, "
        f"'xxh3_128:' || {_hex32(d, fid)}, :now FROM {files}",
        # the replica on the site: its status by representation
        "INSERT INTO replicas (id, file_id, representation_id, project_id, site, status, priority, paused, "
        "attempts, next_attempt_at, last_error, last_failed_at, present_since, bytes_done, lease_owner, "
        "lease_expires_at, source_site, seen_size, seen_hash, updated_at) "
        f"SELECT :replica0 + 2 * (i * :fpr + k) + 2, {fid}, :rep0 + i + 1, :project, :site, {status}, "
        f"CASE WHEN i % 10 = 0 THEN 60 ELSE {s.DEFAULT_PRIORITY} END, false, CASE WHEN {status} = 'failed' THEN 3 ELSE 0 END, :now, "
        f"CASE WHEN {status} = 'failed' THEN :error END, CASE WHEN {status} = 'failed' THEN :now END, "
        f"CASE WHEN {status} = 'present' THEN :now END, 0, "
        f"CASE WHEN {status} = 'in_progress' THEN :owner END, CASE WHEN {status} = 'in_progress' THEN :expires END, "
        f"CASE WHEN {status} = 'present' THEN :source END, "
        f"CASE WHEN {status} = 'present' THEN {FILE_SIZE} END, "
        f"CASE WHEN {status} = 'present' THEN 'xxh3_128:' || {_hex32(d, fid)} END, :now FROM {files}",
        "INSERT INTO representation_sites (representation_id, site, priority, paused, requested_at, requested_by) "
        f"SELECT :rep0 + i + 1, s.site, CASE WHEN i % 10 = 0 THEN 60 ELSE {s.DEFAULT_PRIORITY} END, false, :now, :actor "
        f"FROM {reps} CROSS JOIN (SELECT :source AS site UNION ALL SELECT :site) s",
    ]


# The summary of a (representation, site) whose files all have one status and no pauses, which is
# all this generator writes: that status word ('partial' never happens here).
_SITE_STATES = """
INSERT INTO site_states (
    representation_id, site, project_id, status, files_present, files_queued, files_in_progress,
    files_failed, files_removing, files_missing, files_no_source, paused, bytes_present,
    bytes_in_flight, progress, priority, attempts, last_error, updated_at, total_size)
SELECT g.representation_id, g.site, rp.project_id, g.status,
    CASE WHEN g.status = 'present' THEN g.n ELSE 0 END,
    CASE WHEN g.status = 'queued' THEN g.n ELSE 0 END,
    CASE WHEN g.status = 'in_progress' THEN g.n ELSE 0 END,
    CASE WHEN g.status = 'failed' THEN g.n ELSE 0 END,
    0, 0, 0, false,
    CASE WHEN g.status = 'present' THEN g.size ELSE 0 END,
    CASE WHEN g.status = 'in_progress' THEN g.done ELSE 0 END,
    CASE WHEN g.status = 'present' THEN 1.0
         ELSE CAST(CASE WHEN g.status = 'in_progress' THEN g.done ELSE 0 END AS DOUBLE PRECISION)
              / rp.total_size END,
    g.prio, g.attempts, g.err, g.upd, rp.total_size
FROM (
    SELECT r.representation_id, r.site, MIN(r.status) AS status, COUNT(*) AS n, SUM(f.size) AS size,
        SUM(r.bytes_done) AS done, MAX(r.priority) AS prio, MAX(r.attempts) AS attempts,
        MAX(r.last_error) AS err, MAX(r.updated_at) AS upd
    FROM replicas r JOIN files f ON f.id = r.file_id
    WHERE r.representation_id > :rep0
    GROUP BY r.representation_id, r.site
) g
JOIN representations rp ON rp.id = g.representation_id
"""

# overall: the site needing the most attention (failed, in_progress, queued, present), then by name
_REPRESENTATION_STATES = """
INSERT INTO representation_states (representation_id, project_id, status, status_site, priority, paused, updated_at)
SELECT representation_id, project_id, status, site, priority, false, updated_at FROM (
    SELECT representation_id, project_id, status, site,
        ROW_NUMBER() OVER (PARTITION BY representation_id ORDER BY
            CASE status WHEN 'failed' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'queued' THEN 2 ELSE 3 END,
            site) AS position,
        MAX(priority) OVER (PARTITION BY representation_id) AS priority,
        MAX(updated_at) OVER (PARTITION BY representation_id) AS updated_at
    FROM site_states WHERE representation_id > :rep0
) ranked
WHERE position = 1
"""


def _next_ids(conn: Connection) -> dict[str, int]:
    out = {}
    for table, key in (("representations", "rep0"), ("files", "file0"), ("replicas", "replica0")):
        out[key] = int(conn.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one())
    return out


def generate_catalog(
    engine: Engine,
    project_id: int,
    project_name: str,
    representations: int,
    files_per_rep: int,
    *,
    site: str,
    source_site: str,
    actor: str = "bench@scale",
    lease_owner: str = "bench-worker-old",
) -> dict[str, float]:
    """Add a generated catalog to ``project_id`` (after whatever it holds), with its summaries and
    counters; returns the seconds each step took. PostgreSQL is ANALYZEd and VACUUMed afterwards
    (what autovacuum does soon after a bulk load)."""
    dialect = engine.dialect.name
    now = time.time()
    timings: dict[str, float] = {}
    with engine.begin() as conn:
        params: dict[str, Any] = {
            **_next_ids(conn),
            "project": project_id,
            "reps": representations,
            "fpr": files_per_rep,
            "now": now,
            "actor": actor,
            "site": site,
            "source": source_site,
            "error": ERROR,
            "owner": lease_owner,
            "expires": now + 3600,
        }
        if dialect == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        for statement, label in zip(
            _statements(dialect, project_name),
            ("representations", "files", "replicas (source)", "replicas (site)", "representation_sites"),
            strict=True,
        ):
            started = time.perf_counter()
            conn.execute(sa.text(statement), params)
            timings[label] = time.perf_counter() - started
        if dialect == "postgresql":
            for table in ("representations", "files", "replicas"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    if dialect == "postgresql":
        started = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        timings["vacuum analyze"] = time.perf_counter() - started
    with engine.begin() as conn:
        if dialect == "postgresql":
            # aggregating millions of replicas: hash and sort in memory instead of spilling to disk
            conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        for statement, label in ((_SITE_STATES, "site_states"), (_REPRESENTATION_STATES, "representation_states")):
            started = time.perf_counter()
            conn.execute(sa.text(statement), {"rep0": params["rep0"]})
            timings[label] = time.perf_counter() - started
        started = time.perf_counter()
        rebuild_counts(conn)
        timings["site_counts"] = time.perf_counter() - started
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if dialect == "postgresql" else "ANALYZE")
    timings["analyze"] = time.perf_counter() - started
    return timings


def requeue(engine: Engine, replica_ids: list[int]) -> None:
    """Queue these replicas again (their leases and verified copies forgotten) and refresh their
    summaries: puts a benchmark's queue back as generated between timed claims."""
    r = s.replicas
    with engine.begin() as conn:
        for part in chunked(replica_ids):
            conn.execute(
                r.update()
                .where(r.c.id.in_(part))
                .values(status=s.QUEUED, lease_owner=None, lease_expires_at=None, present_since=None, source_site=None)
            )
        refresh_replicas(conn, replica_ids)


def explain(engine: Engine, operation: Callable[[], Any]) -> list[tuple[str, str]]:
    """PostgreSQL: run ``operation``, then ``EXPLAIN (ANALYZE, BUFFERS)`` each query it sent, with
    the same parameters, in a transaction rolled back afterwards. Returns (statement, plan) pairs."""
    captured: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, executemany: bool) -> None:
        if not executemany and statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE", "INSERT", "DELETE")):
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        operation()
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    out = []
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        try:
            for statement, parameters in captured:
                cur.execute("SET LOCAL plan_cache_mode = force_custom_plan")
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                out.append((statement, "\n".join(row[0] for row in cur.fetchall())))
        finally:
            raw.rollback()
            cur.close()
    finally:
        raw.close()
    return out


__all__ = ["PRODUCTS", "explain", "generate_catalog", "requeue"]
