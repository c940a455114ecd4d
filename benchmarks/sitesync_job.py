"""One timed sitesync job, run as its own process (like the peers' commands): register every folder
of a data set in place on the site ``studio`` (one representation per folder, hashing every file),
then run the engine until the local site holds a verified copy of everything (what
``sitesync sync --once`` does: the real worker, leases, verified transfers, outcome batches).

The installation (database, project, sites) is prepared beforehand by ``prepare()`` (``--prepare``
runs it in this process, with whatever sitesync is importable: the benchmark times an older version
that way); the job gets it through ``SITESYNC_HOME``, ``SITESYNC_DB`` and ``SITESYNC_SITE_ID``.
Prints one JSON line. Only the public ``Client`` API is used, so older versions run it too.

    python benchmarks/sitesync_job.py --source DIR [--publish-only | --sync-only] [--concurrency N]
    python benchmarks/sitesync_job.py --prepare --source DIR --home DIR --db URL --local-root DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

PROJECT = "bench"
SITE_ID = "bench-ws"


def prepare(home: Path, db_url: str, source: Path, local_root: Path) -> dict[str, str]:
    """A fresh installation whose studio site's ``work`` root is ``source`` and whose local site
    (this machine, ``bench-ws``) lives under ``local_root``. Returns the environment for the job."""
    from sitesync import Client

    env = {"SITESYNC_HOME": str(home), "SITESYNC_DB": db_url, "SITESYNC_SITE_ID": SITE_ID}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with Client(db=db_url, home=home) as client:
            client.init()
            client.settings_set("local_root", str(local_root), local=True)
            client.create_project(PROJECT, {"work": {"any": str(source)}})
            for key, value in {"active_site": "studio", "remote_site": "local", "retry_backoff": 0}.items():
                client.settings_set(key, value, project=PROJECT)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return env


def publish_all(client: object, source: Path) -> int:
    folders = sorted(p for p in source.iterdir() if p.is_dir())
    count = 0
    for folder in folders:
        files = sorted(str(f) for f in folder.iterdir() if f.is_file())
        if not files:
            continue
        client.publish(  # type: ignore[attr-defined]
            PROJECT, folder=folder.name, product="bench", version=1, name="data", files=files, site="studio"
        )
        count += len(files)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", required=True, type=Path)
    parser.add_argument("--publish-only", action="store_true")
    parser.add_argument("--sync-only", action="store_true")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--prepare", action="store_true", help="create the installation, then exit")
    parser.add_argument("--home", type=Path)
    parser.add_argument("--db")
    parser.add_argument("--local-root", type=Path)
    args = parser.parse_args(argv)
    if args.prepare:
        print(json.dumps(prepare(args.home, args.db, args.source, args.local_root)))
        return 0

    from sitesync import Client

    out: dict[str, object] = {}
    with Client() as client:
        if not args.sync_only:
            started = time.perf_counter()
            out["published_files"] = publish_all(client, args.source)
            out["publish_seconds"] = time.perf_counter() - started
        if not args.publish_only:
            started = time.perf_counter()
            report = client.sync_once(PROJECT, concurrency=args.concurrency)
            out["sync_seconds"] = time.perf_counter() - started
            out.update(transferred=report.transferred, failed=report.failed_attempts, bytes=report.bytes)
            if report.failed_attempts or report.errors:
                print(json.dumps(out | {"errors": report.errors}), file=sys.stderr)
                return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
