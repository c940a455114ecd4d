"""State store at scale, on SQLite and PostgreSQL: a catalog of representations x files x 2 sites
(100,000 x 5 x 2 = 1,000,000 replicas by default; ``--scale-representations 1000000`` for 10 M) is
generated in bulk by the state store's own generator (``sitesync.state.synthetic``: set-based
``INSERT ... SELECT``), then the queries a worker, the dashboard and the REST API run are timed
through the real ``StateStore`` / ``Client`` / ``Client.sync_queue`` code.

The generated catalog: each representation has ``files_per_rep`` files; every file is present on
``studio`` and has a replica on this machine's site ``scale-ws`` whose status depends on the
representation (40 % present, 50 % queued, 8 % failed, 2 % in progress with a live lease); every
tenth representation has a higher priority. Both databases are ANALYZEd afterwards (on PostgreSQL
what autovacuum does soon after a bulk load).

With ``--baseline REF`` the database is taken back to the baseline's schema revision, the
baseline's code is measured on it, and the database is upgraded again (timed) before this code is
measured: before and after on the same data in the same run.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.common import REPO, Stats, timed_run, with_pythonpath

PROJECT = "scale"
SITE_ID = "scale-ws"
STUDIO = "studio"
OWNER = "bench-worker"
ACTOR = "bench@scale-ws"


# ---------------------------------------------------------------------- bulk generation


def generate(engine: sa.Engine, project_id: int, reps: int, files_per_rep: int) -> dict[str, float]:
    """The catalog, its summaries and counters, written in bulk by the state store's generator."""
    from sitesync.state.synthetic import generate_catalog

    return generate_catalog(
        engine,
        project_id,
        PROJECT,
        reps,
        files_per_rep,
        site=SITE_ID,
        source_site=STUDIO,
        actor=ACTOR,
        lease_owner=OWNER + "-old",
    )


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


def _requeue(store: Any, ids: list[int]) -> None:
    try:
        from sitesync.state.synthetic import requeue
    except ImportError:  # a baseline revision without the generator: the summaries are not refreshed
        pass
    else:
        requeue(store.engine, ids)
        return
    sql = sa.text(
        "UPDATE replicas SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, "
        "present_since = NULL, source_site = NULL WHERE id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    with store.engine.begin() as conn:
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
        _requeue(store, [c.replica_id for c in claims])  # untimed: the queue stays as generated
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
    _measure_queue(client, reps, op)
    if hasattr(client, "metrics"):  # a baseline revision may predate it
        op("monitoring scrape of every project and site (`Client.metrics`, GET /api/v1/metrics)", client.metrics)
    return ops


def _measure_queue(client: Any, reps: int, op: Callable[..., None]) -> None:
    """The Sync Queue list as the REST API and the dashboard ask for it (``Client.sync_queue``)."""

    rnd = random.Random(16)
    products = ("renderMain", "animMain", "modelMain", "rigMain", "lookdevMain", "cacheMain", "plateMain")
    deep = min(4_999 * 50, max(0, reps - 50))  # page 5,000 of 50

    def page(**kwargs: Any) -> Callable[[], None]:
        def run() -> None:
            args = {k: (v() if callable(v) else v) for k, v in kwargs.items()}
            client.sync_queue(PROJECT, limit=50, **args)

        return run

    shot = lambda: f"sh{rnd.randrange(0, 100):03d}0"  # noqa: E731 - one word: 1 % of the representations
    sequence = lambda: f"ep{rnd.randrange(0, max(1, reps // 10000)):02d}/sq{rnd.randrange(0, 100):03d}"  # noqa: E731
    op("Sync Queue: first page of 50 (sort by folder)", page())
    op(f"Sync Queue: page {deep // 50 + 1:,} of 50 (offset {deep:,}, sort by folder)", page(offset=deep))
    op(f"Sync Queue: page {deep // 50 + 1:,}, sort by size descending", page(offset=deep, sort="size", order="desc"))
    op("Sync Queue: text search, one word in 1 % (`sh0420`)", page(text=shot))
    op("Sync Queue: text search, a sequence (`ep03/sq042`, 100 rows)", page(text=sequence))
    op("Sync Queue: text search, two words (`animMain sh0420`)", page(text=lambda: f"{rnd.choice(products)} {shot()}"))
    op("Sync Queue: text search with no match", page(text="nosuchshot"))
    op("Sync Queue: status failed + text (`renderMain`)", page(status="failed", text=lambda: rnd.choice(products)))
    op("Sync Queue: sort by active status, page 2", page(sort="active_status", offset=50))


def _plans(client: Any, project_id: int, reps: int) -> str:
    """PostgreSQL: EXPLAIN (ANALYZE, BUFFERS) of every query the key operations send, as Markdown."""
    from sitesync.state.synthetic import explain

    store = client.store
    deep = min(4_999 * 50, max(0, reps - 50))  # page 5,000 of 50
    claimed: list[Any] = []
    operations: list[tuple[str, Callable[[], Any]]] = [
        (
            "claim next 1,000",
            lambda: claimed.extend(
                store.claim(project_id, SITE_ID, [STUDIO], OWNER, 1000, 60.0, refresh_summaries=False)
            ),
        ),
        ("project status summary", lambda: store.project_site_summaries(project_id)),
        ("Sync Queue text search `sh0420`", lambda: client.sync_queue(PROJECT, text="sh0420", limit=50)),
        (
            "Sync Queue text search `animMain sh0420`",
            lambda: client.sync_queue(PROJECT, text="animMain sh0420", limit=50),
        ),
        (f"Sync Queue page at offset {deep:,}", lambda: client.sync_queue(PROJECT, offset=deep, limit=50)),
    ]
    lines = []
    for label, operation in operations:
        lines += [f"### {label}", ""]
        for statement, plan in explain(store.engine, operation):
            lines += ["```sql", statement.strip(), "```", "", "```", plan, "```", ""]
    _requeue(store, [c.replica_id for c in claimed])
    return "\n".join(lines)


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


def _baseline_head(code: Path) -> str:
    """The newest schema revision the baseline code knows."""
    versions = code / "sitesync" / "state" / "migrations" / "versions"
    return max(p.name.split("_", 1)[0] for p in versions.glob("0*.py"))


def _migrate(url: str, revision: str, downgrade: bool) -> float:
    """Move the benchmark database to ``revision`` with this code's migrations; seconds taken."""
    from alembic import command

    from sitesync.state.database import _alembic_config, create_db_engine

    engine = create_db_engine(url)
    started = time.perf_counter()
    try:
        with engine.begin() as conn:
            (command.downgrade if downgrade else command.upgrade)(_alembic_config(conn), revision)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
    finally:
        engine.dispose()
    return time.perf_counter() - started


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
    """Generate the catalog with this code, then (with ``baseline``) take it back to the baseline's
    schema and measure the baseline's code on it, bring it forward again (the upgrade is timed:
    what an existing studio's ``sitesync init`` costs at this size) and measure this code."""
    from sitesync import Client

    home = Path(tempfile.mkdtemp(prefix="scale-home-", dir=workdir))
    studio_root = home / "studio"
    studio_root.mkdir()
    saved = os.environ.get("SITESYNC_SITE_ID")
    os.environ["SITESYNC_SITE_ID"] = SITE_ID
    before: dict[str, Any] = {}
    upgrade_seconds = None
    try:
        with Client(db=url, home=home) as client:
            client.init()
            client.settings_set("local_root", str(home / "local"), local=True)
            client.create_project(PROJECT, {"work": {"any": str(studio_root)}})
            client.settings_set("remote_site", "local", project=PROJECT)
            project_id = client.store.project(PROJECT).id
            log(f"  {name}: generating {reps * files_per_rep * 2:,} replicas")
            started = time.perf_counter()
            gen_steps = generate(client.store.engine, project_id, reps, files_per_rep)
            gen_seconds = time.perf_counter() - started
            log(
                f"  {name}: generated in {gen_seconds:.0f} s ("
                + ", ".join(f"{k} {v:.0f} s" for k, v in gen_steps.items())
                + ")"
            )
        if baseline is not None:
            from sitesync.state.database import head_revision

            head, old = head_revision(), _baseline_head(baseline[1])
            if old != head:
                log(f"  {name}: schema back to {old} for the baseline ({_migrate(url, old, True):.0f} s)")
            log(f"  {name}: measuring the code of {baseline[0]}")
            try:
                before = _measure_baseline(baseline[1], url, home, reps, repeat, publish)
            except RuntimeError as exc:
                reason = str(exc).strip().splitlines()[-1][:300]
                log(f"    before: not measured: {reason}")
                before = {"operations": [], "publish": None, "error": reason}
            for o in before["operations"]:
                st = Stats.of(o["ms"])
                log(f"    before: {o['name']}: p50 {st.median:.1f} ms, p95 {st.p95:.1f} ms")
            if old != head:
                upgrade_seconds = _migrate(url, head, False)
                log(f"  {name}: upgraded {old} -> {head} in {upgrade_seconds:.0f} s")
        with Client(db=url, home=home) as client:
            log(f"  {name}: measuring")
            ops = _measure(client, project_id, reps, repeat)
            for o in ops:
                st = Stats.of(o["ms"])
                log(f"    {o['name']}: p50 {st.median:.1f} ms, p95 {st.p95:.1f} ms")
            pub = _publish_throughput(client, studio_root, *publish)
            log(f"    publish: {pub['files_per_second']:,.0f} files/s")
            if client.store.is_postgres:
                plans = workdir / "results" / f"scale-plans-{reps}.md"
                plans.parent.mkdir(parents=True, exist_ok=True)
                plans.write_text(_plans(client, project_id, reps))
                log(f"    query plans: {plans}")
        return {
            "name": name,
            "representations": reps,
            "files": reps * files_per_rep,
            "replicas": reps * files_per_rep * 2,
            "generate_seconds": gen_seconds,
            "generate_steps": gen_steps,
            "upgrade_seconds": upgrade_seconds,
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
    databases: tuple[str, ...] = ("sqlite", "postgresql"),
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    out: list[dict[str, Any]] = []
    log(f"state store: {reps:,} representations x {files_per_rep} files x 2 sites")
    args = (workdir, reps, files_per_rep, repeat, publish, log, baseline)
    if "sqlite" in databases:
        db_dir = Path(tempfile.mkdtemp(prefix="scale-sqlite-", dir=workdir))
        try:
            out.append(run_database("SQLite", f"sqlite:///{db_dir / 'state.db'}", *args))
        finally:
            shutil.rmtree(db_dir, ignore_errors=True)
    if "postgresql" in databases:
        problem = pg_reachable(pg_admin_url)
        if problem:
            log(f"  PostgreSQL skipped: {problem}")
            out.append({"name": "PostgreSQL", "skipped": problem})
        else:
            with _postgres(pg_admin_url) as url:
                out.append(run_database("PostgreSQL", url, *args))
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
