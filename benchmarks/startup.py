"""Start-up and republish: what a user waits for before sitesync does any work (issue 16).

    .venv/bin/python -m benchmarks.startup [--quick] [--runs N] [--baseline GIT_REF] [--pg-url URL]
                                            [--republish-files N] [--out DIR]

**Whole processes**, start-up included, as a user runs them: ``sitesync --help``, ``sitesync status P``
and an idle ``sitesync sync --once`` (nothing to transfer) on SQLite, and ``status`` and the idle
``sync --once`` on PostgreSQL. Each command runs ``--runs`` times after one warm-up round, the
commands (and with ``--baseline`` the two versions) alternating within each round so both see the
same load; reported: median, min and max wall time and the median CPU time (user + system, which
load from other processes inflates far less than wall time). Python's bytecode cache is on
(``PYTHONPYCACHEPREFIX`` under the work folder), as for an installed package.

**Republish** of a representation of ``--republish-files`` files (10,000; quick: 200) through the
state store (``StateStore.publish``; hashing the files is not part of it): every file's content
changed, then the same content again. Files per second, median over the rounds; the previous
version (``--baseline``) runs one round (it was quadratic: minutes on PostgreSQL).

Prints a markdown section (for ``benchmarks/RESULTS.md``) and writes ``startup.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import REPO, baseline_source, machine_info, timed_run, with_pythonpath

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
# (arguments, databases it runs on, target seconds on SQLite, target on PostgreSQL)
COMMANDS: list[tuple[list[str], tuple[str, ...], float | None, float | None]] = [
    (["--help"], ("sqlite",), 0.25, None),
    (["status", "P"], ("sqlite", "postgresql"), 0.4, None),
    (["sync", "--once"], ("sqlite", "postgresql"), 0.4, 0.5),
]
REPUBLISH_TARGET = 5000.0  # files per second

Log = Callable[[str], None]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="one counted round, 200-file republish: a smoke run")
    p.add_argument("--runs", type=int, default=None, help="counted rounds (default 7; quick: 1)")
    p.add_argument("--baseline", metavar="GIT_REF", default=None, help="also time this git revision's code")
    p.add_argument("--pg-url", default=os.environ.get("SITESYNC_BENCH_PG", DEFAULT_PG), help="PostgreSQL admin URL")
    p.add_argument("--republish-files", type=int, default=None, help="files of the republished representation")
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data" / "startup")
    p.add_argument("--out", type=Path, default=None, help="where startup.json goes (default WORKDIR)")
    # internal: one republish measurement in this (possibly older) code's process
    p.add_argument("--republish-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--home", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    return args


# ---------------------------------------------------------------------- installations


def command_env(home: Path, db: str, workdir: Path, code: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SITESYNC_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(SITESYNC_HOME=str(home), SITESYNC_DB=db, PYTHONPYCACHEPREFIX=str(workdir / "pycache"))
    return with_pythonpath(env, code)


def sitesync_command() -> list[str]:
    """The ``sitesync`` console script of this interpreter (what a user runs), or ``python -m sitesync``."""
    script = Path(sys.executable).parent / "sitesync"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sitesync"]


PUBLISH_OPTIONS = ("--folder", "sh010", "--product", "plate", "--version", "1", "--name", "exr")


def prepare(home: Path, db: str, workdir: Path) -> None:
    """An installation with project P and one published file, on the studio site: nothing to sync."""
    studio = workdir / "studio"
    studio.mkdir(parents=True, exist_ok=True)
    (studio / "plate.exr").write_bytes(b"0" * 4096)
    env = command_env(home, db, workdir, None)
    for args in (
        ["init"],
        ["project", "create", "P", "--root", f"work={studio}"],
        ["publish", "P", str(studio / "plate.exr"), *PUBLISH_OPTIONS],
    ):
        timed_run([*sitesync_command(), *args], env=env)


class Postgres:
    """A throwaway database on the server at the admin URL, dropped at the end."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        self.conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
        self.name = f"sitesync_bench_startup_{os.getpid()}"
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.url = self.conninfo.rsplit("/", 1)[0] + f"/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}"')


def pg_problem(admin_url: str) -> str | None:
    try:
        import psycopg

        psycopg.connect(admin_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5).close()
    except Exception as exc:
        return f"PostgreSQL not reachable at {admin_url}: {str(exc).strip().splitlines()[0]}"
    return None


# ---------------------------------------------------------------------- whole processes


def time_commands(
    databases: dict[str, tuple[Path, str]],
    variants: dict[str, Path | None],
    workdir: Path,
    runs: int,
    log: Log,
) -> list[dict[str, Any]]:
    cases = [
        (variant, db_name, args)
        for args, on, _, _ in COMMANDS
        for db_name in on
        if db_name in databases
        for variant in variants
    ]
    samples: dict[tuple[str, str, str], dict[str, list[float]]] = {
        (v, d, shlex.join(a)): {"wall": [], "cpu": []} for v, d, a in cases
    }
    for round_no in range(runs + 1):  # round 0 warms up (and writes the bytecode caches)
        shift = round_no % len(cases)
        for variant, db_name, args in cases[shift:] + cases[:shift]:
            home, db = databases[db_name]
            result = timed_run([*sitesync_command(), *args], env=command_env(home, db, workdir, variants[variant]))
            if round_no:
                entry = samples[(variant, db_name, shlex.join(args))]
                entry["wall"].append(result.seconds)
                entry["cpu"].append(result.cpu_seconds)
        log(f"  round {round_no}/{runs} done" + (" (warm-up)" if round_no == 0 else ""))
    rows = []
    for (variant, db_name, command), entry in samples.items():
        rows.append({"variant": variant, "database": db_name, "command": f"sitesync {command}", **entry})
    return rows


# ---------------------------------------------------------------------- republish


def republish_worker(url: str, home: str, folder: str, files: int) -> dict[str, float]:
    """Publish ``files`` files, then time republishing them all changed and then unchanged."""
    from sitesync.client import Client
    from sitesync.state.records import FileFacts, RepresentationKey

    def facts(generation: int) -> list[FileFacts]:
        return [
            FileFacts(
                f"{{root[work]}}/{folder}/f.{i:06d}.exr", 4096 + generation, "xxh3_128", f"{generation:04x}{i:028x}"
            )
            for i in range(files)
        ]

    with Client(db=url, home=home) as client:
        store = client.store
        project_id = store.project("P").id
        key = RepresentationKey(folder, "renderMain", 1, "exr")
        store.publish(project_id, key, facts(0), "studio", [], "bench")
        new = facts(1)
        started = time.perf_counter()
        store.publish(project_id, key, new, "studio", [], "bench")
        changed = time.perf_counter() - started
        started = time.perf_counter()
        store.publish(project_id, key, new, "studio", [], "bench")
        identical = time.perf_counter() - started
    return {"changed": changed, "identical": identical}


def time_republish(
    databases: dict[str, tuple[Path, str]],
    variants: dict[str, Path | None],
    workdir: Path,
    files: int,
    runs: int,
    log: Log,
) -> list[dict[str, Any]]:
    rows = []
    for db_name, (home, db) in databases.items():
        for variant, code in variants.items():
            rounds = runs if code is None else 1
            changed, identical = [], []
            for n in range(rounds):
                cmd = [
                    sys.executable,
                    "-m",
                    "benchmarks.startup",
                    "--republish-worker",
                    "--url",
                    db,
                    "--home",
                    str(home),
                ]
                cmd += ["--folder", f"republish/{variant}/{n}", "--republish-files", str(files)]
                env = command_env(home, db, workdir, code)
                env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
                result = timed_run(cmd, env=env, cwd=str(REPO))
                measured = json.loads(result.stdout.strip().splitlines()[-1])
                changed.append(measured["changed"])
                identical.append(measured["identical"])
            log(f"  republish {files} files, {db_name}, {variant}: changed {files / statistics.median(changed):.0f}/s")
            rows.append(
                {"variant": variant, "database": db_name, "files": files, "changed": changed, "identical": identical}
            )
    return rows


# ---------------------------------------------------------------------- report


def render(data: dict[str, Any], command: str, heading: str = "##") -> str:
    variants = data["variants"]
    before = "before" in variants
    lines = [
        f"{heading} Start-up and republish",
        "",
        f"{data['date']}; {data['machine']['cpu']}; load average at start {data['machine']['load_at_start']}, "
        f"at end {data['load_at_end']}; revision {data['revision']}"
        + (f", before = `{data['baseline']}`" if before else "")
        + f"; {data['runs']} counted rounds after a warm-up, alternating.",
        "",
        f"```sh\n{command}\n```",
        "",
        "Whole processes, start-up included (median wall time, min-max, and median CPU time = user + system):",
        "",
    ]
    head = "| command | database |"
    rule = "|---|---|"
    if before:
        head += " before: wall (min-max) | before: CPU |"
        rule += "---|---|"
    head += " after: wall (min-max) | after: CPU | target | met |"
    rule += "---|---|---|---|"
    lines += [head, rule]
    targets = {
        (f"sitesync {shlex.join(args)}", db): (sqlite_t if db == "sqlite" else pg_t)
        for args, on, sqlite_t, pg_t in COMMANDS
        for db in on
    }
    by_key: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in data["commands"]:
        by_key.setdefault((row["command"], row["database"]), {})[row["variant"]] = row

    def cells(row: dict[str, Any]) -> str:
        wall, cpu = row["wall"], row["cpu"]
        return f" {statistics.median(wall):.3f} s ({min(wall):.2f}-{max(wall):.2f}) | {statistics.median(cpu):.3f} s |"

    for (cmd, db), rows in by_key.items():
        line = f"| `{cmd}` | {db} |"
        if before:
            line += cells(rows["before"])
        after = rows["after"]
        line += cells(after)
        target = targets.get((cmd, db))
        if target is None:
            line += " - | - |"
        else:
            line += f" <= {target} s | {'yes' if statistics.median(after['wall']) <= target else 'no'} |"
        lines.append(line)
    if data.get("skipped"):
        lines += ["", f"PostgreSQL skipped: {data['skipped']}"]
    lines += [
        "",
        f"Republish of a {data['republish_files']:,}-file representation through the state store "
        "(files per second, median; before: one round):",
        "",
        "| database | version | content changed | identical content | target (changed) |",
        "|---|---|---|---|---|",
    ]
    for row in data["republish"]:
        changed = row["files"] / statistics.median(row["changed"])
        identical = row["files"] / statistics.median(row["identical"])
        lines.append(
            f"| {row['database']} | {row['variant']} | {changed:,.0f} files/s "
            f"({statistics.median(row['changed']):.2f} s) | {identical:,.0f} files/s | >= {REPUBLISH_TARGET:,.0f} |"
        )
    return "\n".join(lines) + "\n"


def run(
    workdir: Path, pg_url: str, runs: int, files: int, baseline: tuple[str, Path] | None, log: Log
) -> dict[str, Any]:
    """Time the commands and the republish; the data ``render`` turns into the report section."""
    workdir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": machine_info(workdir),
        "revision": _revision(),
        "baseline": baseline[0] if baseline else None,
        "runs": runs,
        "republish_files": files,
    }
    variants: dict[str, Path | None] = {"after": None}
    if baseline:
        variants = {"before": baseline[1], "after": None}
    data["variants"] = list(variants)
    run_dir = workdir / f"run-{os.getpid()}"
    run_dir.mkdir()
    databases = {"sqlite": (run_dir / "home-sqlite", f"sqlite:///{run_dir / 'sqlite' / 'state.db'}")}
    (run_dir / "sqlite").mkdir()
    postgres = None
    problem = pg_problem(pg_url)
    if problem is None:
        postgres = Postgres(pg_url)
        databases["postgresql"] = (run_dir / "home-pg", postgres.url)
    else:
        data["skipped"] = problem
        log(problem)
    try:
        for name, (home, db) in databases.items():
            log(f"preparing {name}")
            prepare(home, db, run_dir)
        log(f"timing whole processes ({runs} rounds)")
        data["commands"] = time_commands(databases, variants, workdir, runs, log)
        log(f"timing a republish of {files} files")
        data["republish"] = time_republish(databases, variants, workdir, files, runs, log)
    finally:
        if postgres is not None:
            postgres.drop()
        subprocess.run(["rm", "-rf", str(run_dir)], check=False)
    data["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return data


def _revision() -> str:
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True)
    return sha.stdout.strip() or "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = args.republish_files or (200 if args.quick else 10_000)
    if args.republish_worker:
        print(json.dumps(republish_worker(args.url, args.home, args.folder, files)))
        return 0
    workdir = args.workdir.resolve()
    runs = args.runs or (1 if args.quick else 7)
    baseline = (args.baseline, baseline_source(args.baseline, workdir)) if args.baseline else None
    data = run(workdir, args.pg_url, runs, files, baseline, lambda m: print(m, flush=True))
    command = "python -m benchmarks.startup " + shlex.join(sys.argv[1:] if argv is None else argv)
    markdown = render(data, command.strip())
    out = (args.out or workdir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.json").write_text(json.dumps(data, indent=2))
    print()
    print(markdown)
    print(f"wrote {out / 'startup.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
