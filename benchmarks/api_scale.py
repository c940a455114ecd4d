"""Sync Queue API at scale: list and detail latency with 100,000 representations and 1,000,000
replicas, on SQLite and PostgreSQL.

The data set is written in bulk straight into the state store's tables (publishing 100,000
representations one by one would take an hour), then the ``site_states`` summaries are built by
the same refresh the store runs in every transaction. The measurements go through a real
``uvicorn`` server on a loopback port with an HTTP client, so they include routing, validation and
JSON encoding.

    .venv/bin/python benchmarks/api_scale.py --db sqlite:///benchmarks/data/api_scale.db
    .venv/bin/python benchmarks/api_scale.py --db postgresql+psycopg://postgres@127.0.0.1:5432/sitesync_bench

``--reuse`` measures an existing data set again. Results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

SITE_ID = "ws-bench"
PROJECT = "bench"
FILES_PER_REP = 5
FOLDERS = ["assets/char", "assets/prop", "assets/env"] + [f"seq{q:02d}" for q in range(1, 21)]
PRODUCTS = ["modelMain", "rigMain", "lookdevMain", "animMain", "renderMain", "cacheMain", "plateMain"]
NAMES = ["abc", "exr", "ma", "usd", "mov", "png"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def prepare_database(url: str) -> None:
    """Create the PostgreSQL database named in ``url`` if it is missing (SQLite creates itself)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}).first():
            conn.execute(sa.text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def generate(client: Any, reps: int, seed: int = 7) -> None:
    from sitesync.state import schema as s
    from sitesync.state.summaries import rebuild_counts, refresh_representations

    rnd = random.Random(seed)
    store = client.store
    project_id = store.project(PROJECT).id
    now = time.time()
    rep_rows, file_rows, replica_rows = [], [], []
    file_id = 0
    replica_id = 0
    for rep_id in range(1, reps + 1):
        folder = f"{rnd.choice(FOLDERS)}/{'sh' if rnd.random() < 0.7 else 'asset'}{rep_id % 5000:04d}"
        product = rnd.choice(PRODUCTS)
        sizes = [rnd.randint(1_000, 50_000_000) for _ in range(FILES_PER_REP)]
        created = now - rnd.uniform(0, 86400 * 90)
        rep_rows.append(
            {
                "id": rep_id,
                "project_id": project_id,
                "folder": folder,
                "product": product,
                "version": rep_id // 5000 + 1 if rnd.random() > 0.05 else -1,
                "name": f"{rnd.choice(NAMES)}{rep_id}",
                "file_count": FILES_PER_REP,
                "total_size": sum(sizes),
                "content_rev": 1,
                "created_at": created,
                "updated_at": created,
                "published_by": "bench@ws-bench",
            }
        )
        # studio holds everything; this workstation has 60 % of the representations in some
        # state, a cloud site the other 40 % (5 files x 2 sites = 10 replicas per representation)
        second = SITE_ID if rnd.random() < 0.6 else "cloud"
        roll = rnd.random()
        second_status = (
            "present"
            if roll < 0.70
            else "queued"
            if roll < 0.85
            else "failed"
            if roll < 0.90
            else "in_progress"
            if roll < 0.95
            else "partial"
        )
        priority = 50 if rnd.random() < 0.9 else rnd.randint(1, 1000)
        for i, size in enumerate(sizes):
            file_id += 1
            path = f"{{root[work]}}/{PROJECT}/{folder}/publish/{product}/v{rep_id % 100:03d}/f.{1001 + i}.exr"
            file_rows.append(
                {
                    "id": file_id,
                    "representation_id": rep_id,
                    "path": path,
                    "path_key": f"{file_id:032x}",
                    "size": size,
                    "hash_algo": "xxh3_128",
                    "hash": f"{file_id:032x}",
                    "updated_at": created,
                }
            )
            for site, status in (("studio", "present"), (second, second_status)):
                if status == "partial":
                    status = "present" if i < 2 else "queued"
                replica_id += 1
                replica_rows.append(
                    {
                        "id": replica_id,
                        "file_id": file_id,
                        "representation_id": rep_id,
                        "project_id": project_id,
                        "site": site,
                        "status": status,
                        "priority": priority if site != "studio" else 50,
                        "paused": False,
                        "attempts": 3 if status == "failed" else 0,
                        "next_attempt_at": created,
                        "last_error": "write /mnt/ws/x.exr: permission denied" if status == "failed" else None,
                        "last_failed_at": created if status == "failed" else None,
                        "present_since": created if status == "present" else None,
                        "bytes_done": size // 2 if status == "in_progress" else 0,
                        "lease_owner": None,
                        "lease_expires_at": None,
                        "source_site": None,
                        "provider_ref": None,
                        "updated_at": created + rnd.uniform(0, 3600),
                    }
                )
    log(f"inserting {len(rep_rows)} representations, {len(file_rows)} files, {len(replica_rows)} replicas")
    started = time.monotonic()
    with store.engine.begin() as conn:
        for table, rows in ((s.representations, rep_rows), (s.files, file_rows), (s.replicas, replica_rows)):
            for start in range(0, len(rows), 20_000):
                conn.execute(table.insert(), rows[start : start + 20_000])
        if store.is_postgres:
            for table in ("representations", "files", "replicas"):
                conn.execute(
                    sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
    log(f"inserted in {time.monotonic() - started:.1f}s; building site_states")
    started = time.monotonic()
    ids = [row["id"] for row in rep_rows]
    for start in range(0, len(ids), 2000):
        with store.engine.begin() as conn:
            refresh_representations(conn, ids[start : start + 2000])
    with store.engine.begin() as conn:
        rebuild_counts(conn)  # the representations were inserted here, not published
    if store.is_postgres:
        # what autovacuum does on a settled database: visibility map and statistics
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    store.optimize()
    log(f"site_states built in {time.monotonic() - started:.1f}s")


def setup(url: str, home: Path, reps: int, reuse: bool) -> Any:
    os.environ["SITESYNC_SITE_ID"] = SITE_ID
    from sitesync import Client

    client = Client(db=url, home=home)
    if reuse:
        return client
    client.init()
    client.settings_set("local_root", str(home / "local"), local=True)
    client.create_project(PROJECT, {"work": {"any": str(home / "studio")}})
    client.add_site("cloud", "local_drive", roots=[f"work={home / 'cloud'}"])
    client.settings_set("active_site", "local", project=PROJECT)
    client.settings_set("remote_site", "studio", project=PROJECT)
    generate(client, reps)
    return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(client: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    from sitesync.api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(client), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}/api/v1"


def measure(http: Any, paths: Callable[[random.Random], str], n: int, seed: int) -> list[float]:
    rnd = random.Random(seed)
    times = []
    for _ in range(n):
        path = paths(rnd)
        started = time.perf_counter()
        response = http.get(path)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise SystemExit(f"GET {path} -> {response.status_code}: {response.text[:300]}")
        times.append(elapsed * 1000)
    return times


def scenarios(reps: int) -> list[tuple[str, Callable[[random.Random], str]]]:
    q = f"/projects/{PROJECT}/representations"
    return [
        ("list: first page, default sort", lambda r: f"{q}?limit=50"),
        ("list: random page (offset up to total)", lambda r: f"{q}?limit=50&offset={r.randrange(0, reps - 50)}"),
        ("list: quick text filter", lambda r: f"{q}?q=sh{r.randrange(0, 5000):04d}&limit=50"),
        ("list: two-word text filter", lambda r: f"{q}?q={r.choice(PRODUCTS)}+{r.choice(NAMES)}&limit=50"),
        ("list: sort by active status", lambda r: f"{q}?sort=active_status&order={r.choice(['asc', 'desc'])}&limit=50"),
        ("list: sort by remote progress", lambda r: f"{q}?sort=remote_progress&order=desc&limit=50"),
        ("list: sort by active change time", lambda r: f"{q}?sort=active_updated&order=desc&limit=50"),
        ("list: sort by priority", lambda r: f"{q}?sort=priority&order=desc&limit=50"),
        ("list: sort by size", lambda r: f"{q}?sort=size&order=desc&limit=50"),
        ("list: filter active status failed", lambda r: f"{q}?active_status=failed&limit=50"),
        ("list: filter status queued + text", lambda r: f"{q}?status=queued&q={r.choice(PRODUCTS)}&limit=50"),
        ("list: filter version + sort by status", lambda r: f"{q}?version={r.randrange(1, 20)}&sort=status&limit=50"),
        ("list: other site pair (cloud)", lambda r: f"{q}?active_site=cloud&remote_site=studio&sort=active_status"),
        ("detail: one representation", lambda r: f"/representations/{r.randrange(1, reps + 1)}"),
        ("projects", lambda r: "/projects"),
        ("events: newest page", lambda r: f"/events?project={PROJECT}&limit=100"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite:///benchmarks/data/api_scale.db")
    parser.add_argument("--home", default=None, help="SITESYNC_HOME to use (default: a temporary folder)")
    parser.add_argument("--reps", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40, help="requests per scenario")
    parser.add_argument("--reuse", action="store_true", help="measure an existing data set again")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

    if not args.reuse:
        parsed = sa.make_url(args.db)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            Path(parsed.database).unlink(missing_ok=True)
        elif parsed.get_backend_name() == "postgresql":
            prepare_database(args.db)
            engine = sa.create_engine(parsed)
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            engine.dispose()
        else:
            prepare_database(args.db)
    home = Path(args.home or tempfile.mkdtemp(prefix="sitesync-apiscale-"))
    client = setup(args.db, home, args.reps, args.reuse)
    import httpx

    server, thread, base = start_server(client)
    rows = []
    try:
        with httpx.Client(base_url=base, timeout=60) as http:
            for i, (label, paths) in enumerate(scenarios(args.reps)):
                measure(http, paths, 3, seed=1000 + i)  # warm the caches
                times = measure(http, paths, args.requests, seed=i)
                qs = statistics.quantiles(times, n=20, method="inclusive")
                rows.append((label, statistics.median(times), qs[18], max(times)))
                log(f"{label}: p50 {rows[-1][1]:.1f} ms, p95 {rows[-1][2]:.1f} ms")
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()
    backend = sa.make_url(args.db).get_backend_name()
    print(f"\n{backend}: {args.reps:,} representations, {args.reps * FILES_PER_REP * 2:,} replicas, ")
    print(f"{args.requests} requests per row, {platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}\n")
    print("| request | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for label, p50, p95, worst in rows:
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {worst:.1f} |")


if __name__ == "__main__":
    main()
