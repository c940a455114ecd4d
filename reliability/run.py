"""Run every reliability scenario at full size and write RELIABILITY.md.

    .venv/bin/python -m reliability.run [--quick] [--only sigkill,transient,...,security] [--out RELIABILITY.md]

``--only security`` runs the security scenarios (``reliability/security.py``) alone; their names are
programs, token, logs, badinput, disks.

Needs root (tmpfs mount for the disk-full scenario, a throwaway PostgreSQL cluster run as the
postgres user) and PostgreSQL at ``SITESYNC_TEST_PG`` (default 127.0.0.1:5432) for the
concurrent-workers scenario. Full size takes roughly 10-20 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from reliability import behind_our_back, outages, scenarios, security
from sitesync.testing import enable_test_providers

PG_ADMIN = os.environ.get("SITESYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_database() -> str:
    name = f"sitesync_reliability_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def _drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def plan(quick: bool) -> dict[str, tuple[Callable[..., scenarios.Result], dict, str]]:
    q = quick
    return {
        "sigkill": (
            scenarios.sigkill_trials,
            {"trials": 3 if q else 20, "files": 300 if q else 1000, "size": 16 * 1024, "seed": 20261127},
            "sigkill",
        ),
        "transient": (scenarios.transient_faults, {"files": 300 if q else 3000, "size": 8192}, "transient"),
        "corrupt": (scenarios.corrupt_reads, {"files": 200 if q else 2000, "size": 16 * 1024}, "corrupt"),
        **{
            name: (fn, {"files": 30 if q else 300, "size": 8192}, name)
            for name, fn in behind_our_back.SCENARIOS.items()
        },
        "diskfull": (scenarios.disk_full, {}, "diskfull"),
        "workers": (
            scenarios.concurrent_workers_pg,
            {"workers": 4, "files": 300 if q else 2000, "size": 16 * 1024},
            "pg",
        ),
        "pgrestart": (scenarios.postgres_restart, {"files": 300 if q else 2000, "size": 64 * 1024}, "pgrestart"),
        "outages": (
            outages.site_outages,
            {"files": 60 if q else 300, "size": 2 * 1024 * 1024, "outages": 1 if q else 3},
            "outages",
        ),
    }


def security_plan(quick: bool) -> dict[str, Callable[[Path], security.Finding]]:
    q = quick
    return {
        "programs": lambda work: security.program_execution(work, cli_sample=5 if q else 40),
        "token": security.token_guard,
        "logs": lambda work: security.secrets_in_logs(work, files=20 if q else 300),
        "badinput": lambda work: security.bad_input(work, rounds=1 if q else 20, cli_sample=10 if q else 100),
        "disks": lambda work: security.hostile_disks(work, writes=3 if q else 20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--out", default="RELIABILITY.md")
    args = parser.parse_args(argv)
    enable_test_providers()  # the scenarios inject faults through the test-only `faulty` provider
    logging.basicConfig(level=logging.ERROR)  # in-process workers log every injected fault otherwise
    chosen = plan(args.quick)
    checks = security_plan(args.quick)
    if args.only:
        only = set(args.only.split(","))
        chosen = {k: v for k, v in chosen.items() if k in only}
        checks = {k: v for k, v in checks.items() if k in only or "security" in only}
    work = Path(tempfile.mkdtemp(prefix="sitesync-reliability-"))
    results: list[scenarios.Result] = []
    findings: list[security.Finding] = []
    pg_url = None
    started = time.time()
    try:
        for name, (fn, kwargs, kind) in chosen.items():
            print(f"[reliability] {name} ...", file=sys.stderr, flush=True)
            if kind == "pg":
                pg_url = pg_url or _pg_database()
                result = fn(work / name, pg_url, **kwargs)
            else:
                result = fn(work / name, **kwargs)
            results.append(result)
            print(f"[reliability] {name}: {'ok' if result.ok else 'PROBLEM'} {result}", file=sys.stderr, flush=True)
        for name, check in checks.items():
            print(f"[reliability] security {name} ...", file=sys.stderr, flush=True)
            finding = check(work / f"security-{name}")
            findings.append(finding)
            print(f"[reliability] {name}: {'ok' if finding.ok else 'PROBLEM'} {finding}", file=sys.stderr, flush=True)
    finally:
        if pg_url:
            _drop_pg_database(pg_url)
        shutil.rmtree(work, ignore_errors=True)
    command = "sudo .venv/bin/python -m reliability.run" + (" --quick" if args.quick else "")
    Path(args.out).write_text(render(results, command, started, findings), encoding="utf-8")
    print(f"[reliability] wrote {args.out}", file=sys.stderr)
    return 0 if all(r.ok for r in results) and all(f.ok for f in findings) else 1


def render(
    results: list[scenarios.Result], command: str, started: float, findings: list[security.Finding] | None = None
) -> str:
    lines = [
        "# Reliability",
        "",
        "What happens to files when things go wrong, measured by running real worker processes on real",
        "databases and real files while faults are injected (`reliability/scenarios.py`; the test suite runs",
        "the same scenarios at small sizes in `tests/test_reliability.py`).",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, "
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}.",
        f"Reproduce: `{command}`",
        "",
        "| scenario | trials | faults injected | files | lost | corrupt | stuck | double transfers | outcome | time |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.trials} | {r.faults} | {r.files} | {r.lost} | {r.corrupt} | {r.stuck} | "
            f"{r.double} | {'converged' if r.ok else 'PROBLEM'} | {r.seconds:.0f}s |"
        )
    lines += ["", "Notes:", ""]
    for r in results:
        for note in r.notes[:12]:
            lines.append(f"- {r.scenario}: {note}")
    lines += [
        "",
        "Definitions: *lost* = the catalog says present but the file is missing or wrong, or a file never",
        "converged to present; *corrupt* = a file under its final name whose content does not match the",
        "catalog hash; *stuck* = in progress without a live lease after recovery; *double transfers* =",
        "more than one recorded transfer of the same file to the same site (only meaningful where no worker",
        "was killed: a killed worker's finished-but-unrecorded copy is legitimately redone, and is listed in",
        "the notes instead). In the scenarios that change storage behind sitesync's back",
        "(`reliability/behind_our_back.py`), files the scenario deletes or changes on purpose are not counted",
        "as lost: they must be recorded lost (`missing`), never propagated, with no attempt spent; a file",
        "sitesync did not own that it overwrote or deleted counts as lost.",
        "",
    ]
    if findings:
        lines += render_security(findings)
    return "\n".join(lines)


def render_security(findings: list[security.Finding]) -> list[str]:
    lines = [
        "## Security: a hostile local user",
        "",
        "Real `sitesync serve` processes, command lines, worker logs and file systems attacked as a curious",
        "colleague on the same machine would (`reliability/security.py`; small runs in `tests/test_reliability.py`).",
        "",
        "| check | attempts | refused as required | got through | crashes | outcome | time |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for f in findings:
        lines.append(
            f"| {f.check} | {f.attempts} | {f.refused} | {f.let_through} | {f.crashes} | "
            f"{'held' if f.ok else 'PROBLEM'} | {f.seconds:.0f}s |"
        )
    lines += ["", "Notes:", ""]
    for f in findings:
        for note in f.notes[:8]:
            lines.append(f"- {f.check}: {note}")
    lines += [
        "",
        "Definitions: *refused as required* = a 401/403/422 answer, an exit 2 with one line, a site",
        "refused with its reason, or (logs) a secret shown as `********`; *got through* = a write",
        "accepted that must not be, a request served without valid credentials, a program run, a",
        "secret found in a log, or a refused command that changed the database; *crashes* = a",
        "traceback, a 500, an error of several lines.",
        "",
    ]
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
