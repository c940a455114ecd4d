"""State store at scale, on SQLite and PostgreSQL: a catalog of 100,000 representations with
1,000,000 replicas is generated in bulk (plain SQL: ``executemany`` on SQLite, ``COPY`` on
PostgreSQL), then the queries a worker and the dashboard run are timed through the real
``StateStore`` / ``Client`` code.

The generated catalog: each representation has ``files_per_rep`` files; every file is present on
``studio`` and has a replica on this machine's site ``scale-ws`` whose status depends on the
representation (40 % present, 50 % queued, 8 % failed, 2 % in progress with a live lease); every
tenth representation has a higher priority. PostgreSQL is ANALYZEd afterwards (what autovacuum does
soon after a bulk load); SQLite is not (sitesync never runs ANALYZE there).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import xxhash

from benchmarks.common import REPO, Stats, timed_run, with_pythonpath

PROJECT = "scale"
SITE_ID = "scale-ws"
STUDIO = "studio"
OWNER = "bench-worker"
ACTOR = "bench@scale-ws"


# ---------------------------------------------------------------------- bulk generation


def _rows(project_id: int, reps: int, files_per_rep: int, now: float) -> dict[str, Iterator[tuple[Any, ...]]]:
    def status_of(i: int) -> str:
        slot = i % 50
        if slot < 20:
            return "present"
        if slot < 45:
            return "queued"
        if slot < 49:
            return "failed"
        return "in_progress"

    def representations() -> Iterator[tuple[Any, ...]]:
        for i in range(reps):
            folder = f"ep{i // 10000:02d}/sq{(i // 100) % 100:03d}/sh{i % 100:03d}0"
            yield (
                i + 1,
                project_id,
                folder,
                "renderMain",
                1,
                "exr",
                files_per_rep,
                files_per_rep * 8_000_000,
                1,
                now,
                now,
                ACTOR,
            )

    def files() -> Iterator[tuple[Any, ...]]:
        for i in range(reps):
            folder = f"ep{i // 10000:02d}/sq{(i // 100) % 100:03d}/sh{i % 100:03d}0"
            for k in range(files_per_rep):
                fid = i * files_per_rep + k + 1
                path = f"{{root[work]}}/{PROJECT}/{folder}/publish/renderMain/v001/exr/f.{1001 + k}.exr"
                yield (
                    fid,
                    i + 1,
                    path,
                    xxhash.xxh3_128_hexdigest(path.encode()),
                    8_000_000,
                    "xxh3_128",
                    f"{fid:032x}",
                    now,
                )

    def replicas() -> Iterator[tuple[Any, ...]]:
        rid = 0
        for i in range(reps):
            status = status_of(i)
            priority = 60 if i % 10 == 0 else 50
            for k in range(files_per_rep):
                fid = i * files_per_rep + k + 1
                rid += 1
                yield (
                    rid,
                    fid,
                    i + 1,
                    project_id,
                    STUDIO,
                    "present",
                    priority,
                    False,
                    0,
                    now,
                    None,
                    None,
                    now,
                    0,
                    None,
                    None,
                    None,
                    None,
                    now,
                )
                rid += 1
                err = "site bench: read f.exr: permission denied" if status == "failed" else None
                lease = (OWNER + "-old", now + 3600) if status == "in_progress" else (None, None)
                yield (
                    rid,
                    fid,
                    i + 1,
                    project_id,
                    SITE_ID,
                    status,
                    priority,
                    False,
                    3 if status == "failed" else 0,
                    now,
                    err,
                    now if err else None,
                    now if status == "present" else None,
                    0,
                    *lease,
                    STUDIO if status == "present" else None,
                    None,
                    now,
                )

    def rep_sites() -> Iterator[tuple[Any, ...]]:
        for i in range(reps):
            priority = 60 if i % 10 == 0 else 50
            for site in (STUDIO, SITE_ID):
                yield (i + 1, site, priority, False, now, ACTOR)

    return {
        "representations": representations(),
        "files": files(),
        "replicas": replicas(),
        "representation_sites": rep_sites(),
    }


_COLUMNS = {
    "representations": "id, project_id, folder, product, version, name, file_count, total_size, content_rev, "
    "created_at, updated_at, published_by",
    "files": "id, representation_id, path, path_key, size, hash_algo, hash, updated_at",
    "replicas": "id, file_id, representation_id, project_id, site, status, priority, paused, attempts, "
    "next_attempt_at, last_error, last_failed_at, present_since, bytes_done, lease_owner, lease_expires_at, "
    "source_site, provider_ref, updated_at",
    "representation_sites": "representation_id, site, priority, paused, requested_at, requested_by",
}


def generate(engine: sa.Engine, project_id: int, reps: int, files_per_rep: int) -> None:
    rows = _rows(project_id, reps, files_per_rep, time.time())
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        cur = raw.cursor()
        if engine.dialect.name == "sqlite":
            for table, gen in rows.items():
                cols = _COLUMNS[table]
                marks = ", ".join("?" for _ in cols.split(","))
                cur.execute("BEGIN")
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", gen)
                cur.execute("COMMIT")
        else:
            for table, gen in rows.items():
                with driver.cursor() as pcur, pcur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                    for row in gen:
                        copy.write_row(row)
                driver.commit()
            with driver.cursor() as pcur:
                for table in ("representations", "files", "replicas"):
                    pcur.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                    )
            driver.commit()
            driver.autocommit = True
            with driver.cursor() as pcur:
                pcur.execute("ANALYZE")
            driver.autocommit = False
        cur.close()
    finally:
        raw.close()
    _fill_summaries(engine)


def _fill_summaries(engine: sa.Engine) -> None:
    """Compute the Sync Queue summaries of the generated catalog exactly as the migration that
    introduced them does for an existing database (the engine keeps them current from here on)."""
    import importlib

    migration = importlib.import_module("sitesync.state.migrations.versions.0002_site_states")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM representation_states"))
        conn.execute(sa.text("DELETE FROM site_states"))
        conn.execute(sa.text(migration._BACKFILL))
        conn.execute(sa.text(migration._BACKFILL_OVERALL))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


# ---------------------------------------------------------------------- databases


@contextlib.contextmanager
def _postgres(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"sitesync_bench_{os.getpid()}"
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    base = conninfo.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://")
    finally:
        with psycopg.connect(conninfo, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


def pg_reachable(admin_url: str) -> str | None:
    """None if PostgreSQL answers at ``admin_url``, else why not."""
    try:
        import psycopg

        psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5).close()
    except Exception as exc:
        return f"PostgreSQL not reachable at {admin_url}: {str(exc).strip().splitlines()[0]}"
    return None


# ---------------------------------------------------------------------- measurements


def _requeue(engine: sa.Engine, ids: list[int]) -> None:
    sql = sa.text(
        "UPDATE replicas SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
        "present_since = NULL, source_site = NULL WHERE id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    with engine.begin() as conn:
        conn.execute(sql, {"ids": ids})


def _time_ms(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _measure(client: Any, project_id: int, reps: int, repeat: int) -> list[dict[str, Any]]:
    from sitesync.state.records import Outcome

    store = client.store
    ops: list[dict[str, Any]] = []

    def op(name: str, fn: Callable[[], Any], n: int = repeat) -> None:
        fn()  # warm-up: compiled statement caches, connection pool, database cache
        ops.append({"name": name, "ms": [_time_ms(fn) for _ in range(n)]})

    claim_ms, summary_ms, record_ms = [], [], []
    for i in range(repeat + 1):
        started = time.perf_counter()
        # as the worker claims: the lease transaction alone, the summaries in the next transaction
        claims = store.claim(project_id, SITE_ID, [STUDIO], OWNER, 1000, 60.0, refresh_summaries=False)
        elapsed = (time.perf_counter() - started) * 1000
        pairs = {(c.representation_id, c.site) for c in claims}
        summaries = _time_ms(lambda pairs=pairs: store.refresh_summaries(pairs))
        if len(claims) != 1000:
            raise RuntimeError(f"claim returned {len(claims)} replicas, expected 1000")
        outcomes = [
            Outcome(
                replica_id=c.replica_id,
                file_id=c.file_id,
                representation_id=c.representation_id,
                project_id=c.project_id,
                site=c.site,
                kind="present",
                source_site=STUDIO,
                bytes=c.size,
                duration=0.01,
                error=None,
                alternatives=(),
                unavailable_site=None,
            )
            for c in claims
        ]
        rec = _time_ms(lambda outcomes=outcomes: store.record_outcomes(OWNER, outcomes))
        if i:  # the first is the warm-up
            claim_ms.append(elapsed)
            summary_ms.append(summaries)
            record_ms.append(rec)
        _requeue(store.engine, [c.replica_id for c in claims])  # untimed: the queue stays as generated
    ops.append({"name": "claim next 1,000 queued replicas (`StateStore.claim`)", "ms": claim_ms})
    ops.append({"name": "then update their Sync Queue summaries (`StateStore.refresh_summaries`)", "ms": summary_ms})
    ops.append({"name": "record 1,000 outcomes, all present (`StateStore.record_outcomes`)", "ms": record_ms})
    op("expire leases (every worker, every lease/2 s)", store.expire_leases)
    op("project status summary (`project_site_summaries`)", lambda: store.project_site_summaries(project_id))
    for size, offset in ((50, 0), (200, 0), (200, reps // 2)):

        def page(size: int = size, offset: int = offset) -> None:
            _, rows = store.representation_page(project_id, limit=size, offset=offset)
            store.summarize(rows, [SITE_ID, STUDIO])

        op(f"dashboard page of {size} at offset {offset:,} (`representation_page` + `summarize`)", page)
    op("`Client.status(project, limit=200)` (page + summaries + settings)", lambda: client.status(PROJECT, limit=200))
    if hasattr(client, "metrics"):  # a baseline revision may predate it
        op("monitoring scrape of every project and site (`Client.metrics`, GET /api/v1/metrics)", client.metrics)
    return ops


def _publish_throughput(
    client: Any, studio_root: Path, reps: int, files: int, size: int, label: str = "publish_bench"
) -> dict[str, Any]:
    batches = []
    for r in range(reps):
        folder = studio_root / PROJECT / label / f"sh{r:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for k in range(files):
            p = folder / f"f.{1001 + k}.exr"
            p.write_bytes(os.urandom(size))
            paths.append(str(p))
        batches.append((f"{label}/sh{r:04d}", paths))
    if hasattr(client, "mark_site"):
        # the generated catalog's copies on studio are rows, not files: say the storage is studio's
        client.mark_site(STUDIO, PROJECT, force=True)
    started = time.perf_counter()
    for folder, paths in batches:
        client.publish(PROJECT, folder=folder, product="plate", version=1, name="exr", files=paths, site=STUDIO)
    seconds = time.perf_counter() - started
    total = reps * files
    return {
        "representations": reps,
        "files_per_representation": files,
        "file_size": size,
        "files": total,
        "seconds": seconds,
        "files_per_second": total / seconds,
    }


def _measure_baseline(
    code: Path, url: str, home: Path, reps: int, repeat: int, publish: tuple[int, int, int]
) -> dict[str, Any]:
    """The same measurements with another version's code (``--baseline``), in a subprocess."""
    env = with_pythonpath({**os.environ, "SITESYNC_SITE_ID": SITE_ID}, code)
    cmd = [sys.executable, "-m", "benchmarks.scale", "--url", url, "--home", str(home)]
    cmd += ["--representations", str(reps), "--repeat", str(repeat), "--publish", ",".join(map(str, publish))]
    result = timed_run(cmd, env=env, cwd=str(REPO))
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_database(
    name: str,
    url: str,
    workdir: Path,
    reps: int,
    files_per_rep: int,
    repeat: int,
    publish: tuple[int, int, int],
    log: Callable[[str], None],
    baseline: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    from sitesync import Client

    home = Path(tempfile.mkdtemp(prefix="scale-home-", dir=workdir))
    studio_root = home / "studio"
    studio_root.mkdir()
    saved = os.environ.get("SITESYNC_SITE_ID")
    os.environ["SITESYNC_SITE_ID"] = SITE_ID
    try:
        with Client(db=url, home=home) as client:
            client.init()
            client.settings_set("local_root", str(home / "local"), local=True)
            client.create_project(PROJECT, {"work": {"any": str(studio_root)}})
            client.settings_set("remote_site", "local", project=PROJECT)
            project_id = client.store.project(PROJECT).id
            log(f"  {name}: generating {reps * files_per_rep * 2:,} replicas")
            started = time.perf_counter()
            generate(client.store.engine, project_id, reps, files_per_rep)
            gen_seconds = time.perf_counter() - started
            log(f"  {name}: generated in {gen_seconds:.0f} s; measuring")
            ops = _measure(client, project_id, reps, repeat)
            for o in ops:
                st = Stats.of(o["ms"])
                log(f"    {o['name']}: p50 {st.median:.1f} ms, p95 {st.p95:.1f} ms")
            pub = _publish_throughput(client, studio_root, *publish)
            log(f"    publish: {pub['files_per_second']:,.0f} files/s")
        before: dict[str, Any] = {}
        if baseline is not None:
            log(f"  {name}: the same with the code of {baseline[0]}")
            try:
                before = _measure_baseline(baseline[1], url, home, reps, repeat, publish)
            except RuntimeError as exc:
                # an older revision refuses a database at a newer schema: report, do not abort the run
                reason = str(exc).strip().splitlines()[-1][:300]
                log(f"    before: not measured: {reason}")
                before = {"operations": [], "publish": None, "error": reason}
            for o in before["operations"]:
                st = Stats.of(o["ms"])
                log(f"    before: {o['name']}: p50 {st.median:.1f} ms, p95 {st.p95:.1f} ms")
        return {
            "name": name,
            "representations": reps,
            "files": reps * files_per_rep,
            "replicas": reps * files_per_rep * 2,
            "generate_seconds": gen_seconds,
            "operations": ops,
            "publish": pub,
            "operations_before": before.get("operations", []),
            "publish_before": before.get("publish"),
            "before_error": before.get("error"),
        }
    finally:
        if saved is None:
            os.environ.pop("SITESYNC_SITE_ID", None)
        else:
            os.environ["SITESYNC_SITE_ID"] = saved
        shutil.rmtree(home, ignore_errors=True)


def run(
    workdir: Path,
    pg_admin_url: str,
    reps: int,
    files_per_rep: int,
    repeat: int,
    publish: tuple[int, int, int],
    log: Callable[[str], None] = print,
    baseline: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    out = []
    log(f"state store: {reps:,} representations x {files_per_rep} files x 2 sites")
    db_dir = Path(tempfile.mkdtemp(prefix="scale-sqlite-", dir=workdir))
    try:
        out.append(
            run_database(
                "SQLite",
                f"sqlite:///{db_dir / 'state.db'}",
                workdir,
                reps,
                files_per_rep,
                repeat,
                publish,
                log,
                baseline,
            )
        )
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)
    problem = pg_reachable(pg_admin_url)
    if problem:
        log(f"  PostgreSQL skipped: {problem}")
        out.append({"name": "PostgreSQL", "skipped": problem})
    else:
        with _postgres(pg_admin_url) as url:
            out.append(run_database("PostgreSQL", url, workdir, reps, files_per_rep, repeat, publish, log, baseline))
    return {"databases": out, "seconds": time.time() - started}


def main(argv: list[str] | None = None) -> int:
    """Measure an existing generated catalog (``--baseline`` runs this with another version's code)."""
    import argparse

    from sitesync import Client

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--home", required=True, type=Path)
    p.add_argument("--representations", type=int, required=True)
    p.add_argument("--repeat", type=int, required=True)
    p.add_argument("--publish", required=True, help="REPRESENTATIONS,FILES,SIZE")
    args = p.parse_args(argv)
    reps, files, size = (int(x) for x in args.publish.split(","))
    with Client(db=args.url, home=args.home) as client:
        ops = _measure(client, client.store.project(PROJECT).id, args.representations, args.repeat)
        pub = _publish_throughput(client, args.home / "studio", reps, files, size, label="publish_bench_before")
    print(json.dumps({"operations": ops, "publish": pub}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
