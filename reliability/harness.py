"""Building blocks of the reliability scenarios: throwaway studios, worker processes, a throwaway
PostgreSQL cluster, and the checks that count lost, corrupt and stuck files.

Used by ``reliability/run.py`` (large runs, writes RELIABILITY.md) and by the test suite (small runs).
Everything here is real: SQLite/PostgreSQL, worker subprocesses, files on disk.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from sitesync import Client
from sitesync.hashing import hash_file
from sitesync.state import schema as s

SITE_ID = "rel-ws"


@dataclass
class Env:
    """A project ``rel`` with a studio storage folder, this machine's local site and a database."""

    root: Path
    db_url: str
    client: Client
    studio_root: Path
    local_root: Path
    home: Path
    project: str = "rel"

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"SITESYNC_HOME": str(self.home), "SITESYNC_DB": self.db_url, "SITESYNC_SITE_ID": SITE_ID})
        return env

    def close(self) -> None:
        self.client.close()


def make_env(root: Path, db_url: str | None = None, **settings: Any) -> Env:
    root.mkdir(parents=True, exist_ok=True)
    home = root / "home"
    studio_root = root / "studio"
    local_root = root / "local"
    studio_root.mkdir(exist_ok=True)
    db_url = db_url or f"sqlite:///{root / 'state.db'}"
    os.environ["SITESYNC_SITE_ID"] = SITE_ID  # the in-process client must agree with the workers
    client = Client(db=db_url, home=home)
    client.init()
    client.settings_set("local_root", str(local_root), local=True)
    client.create_project("rel", {"work": {"any": str(studio_root)}})
    values = {"active_site": "local", "remote_site": "studio", "retry_backoff": 0, "loop_delay": 1}
    values.update(settings)
    for key, value in values.items():
        client.settings_set(key, value, project="rel")
    return Env(root, db_url, client, studio_root, local_root, home)


def write_files(folder: Path, count: int, size: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    block = os.urandom(max(size, 1))
    for i in range(count):
        path = folder / f"f.{i:05d}.bin"
        # distinct content per file without paying for os.urandom per file
        path.write_bytes(i.to_bytes(8, "little") + seed.to_bytes(4, "little") + block[: max(0, size - 12)])
        paths.append(path)
    return paths


def publish_on_studio(env: Env, count: int, size: int, name: str = "seq") -> int:
    files = write_files(env.studio_root / "rel" / name, count, size)
    return env.client.publish(
        env.project,
        folder=name,
        product="renderMain",
        version=1,
        name="bin",
        files=[str(p) for p in files],
        site="studio",
    ).representation_id


def start_worker(env: Env, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        [sys.executable, "-m", "sitesync", "worker", "--log-level", "warning", *args],
        env=env.environ(),
        stdout=out,
        stderr=out if log else subprocess.DEVNULL,
    )


def run_cli(env: Env, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sitesync", *args], env=env.environ(), capture_output=True, text=True, timeout=timeout
    )


@dataclass
class SiteCheck:
    """What a site really holds compared with the catalog."""

    files: int = 0
    present: int = 0
    lost: int = 0  # catalog says present, but the file is missing or wrong
    corrupt: int = 0  # a file under its final name with content that does not match the catalog
    stuck: int = 0  # in progress with no live lease
    leftovers: int = 0  # temporary files left behind
    not_present: int = 0  # wanted but not (yet) present
    statuses: dict[str, int] = field(default_factory=dict)


def check_site(env: Env, rep_id: int, site: str, base: Path, *, live_leases_ok: bool = False) -> SiteCheck:
    """Hash every file of the representation found on disk under ``base`` and compare with the catalog."""
    detail = env.client.store.representation_detail(rep_id)
    out = SiteCheck(files=len(detail))
    now = time.time()
    for frow, replicas in detail:
        replica = next((r for r in replicas if r.site == site), None)
        status = replica.status if replica else "none"
        out.statuses[status] = out.statuses.get(status, 0) + 1
        path = base / frow.path.split("}/", 1)[1]
        exists = path.exists()
        good = exists and hash_file(str(path)) == (frow.size, frow.hash)
        if exists and not good:
            out.corrupt += 1
        if status == "present":
            if good:
                out.present += 1
            else:
                out.lost += 1
        else:
            out.not_present += 1
        if status == "in_progress" and not (live_leases_ok and (replica.lease_expires_at or 0) > now):
            out.stuck += 1
    if base.exists():
        out.leftovers = sum(1 for p in base.rglob(".sitesync-*") if p.is_file())
    return out


def files_queued(env: Env, rep_id: int, site: str) -> int:
    """How many of the representation's files wait in the queue of ``site`` (one summary row: cheap
    enough to poll every few milliseconds)."""
    state = env.client.store.site_states_of(rep_id).get(site)
    return int(state["files_queued"]) if state else 0


def transfer_counts(env: Env, rep_id: int) -> collections.Counter[tuple[int, str]]:
    events = env.client.store.events(representation_id=rep_id, kinds=["transfer"], limit=10_000_000)
    return collections.Counter((e.file_id, e.site) for e in events)


def failure_count(env: Env, rep_id: int | None = None) -> int:
    engine = env.client.store.engine
    q = sa.select(sa.func.count()).select_from(s.events).where(s.events.c.kind == "failure")
    if rep_id is not None:
        q = q.where(s.events.c.representation_id == rep_id)
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # the database may be restarting: keep polling
            pass
        time.sleep(interval)
    return False


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawayPostgres:
    """A PostgreSQL cluster of our own (initdb + pg_ctl as the postgres user) that we may restart."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not bins:
            raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql (install postgresql)")
        self.bin = bins[-1]
        self.dir = Path(tempfile.mkdtemp(prefix="sitesync-relpg-"))
        shutil.chown(self.dir, "postgres")
        self.port = free_port()
        self._as_postgres(f"'{self.bin}/initdb' -D '{self.dir}/data' -A trust -U postgres >/dev/null")
        self.start()

    def _as_postgres(self, command: str) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", command], check=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
        self._as_postgres(
            f"'{self.bin}/pg_ctl' -D '{self.dir}/data' -l '{self.dir}/log' -w -o \"{opts}\" start >/dev/null"
        )

    def stop(self) -> None:
        self._as_postgres(f"'{self.bin}/pg_ctl' -D '{self.dir}/data' -m fast -w stop >/dev/null")

    def restart(self, down_seconds: float = 1.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Served:
    """A running ``sitesync serve``: its first line, its address and dashboard link."""

    line: str
    base: str  # http://127.0.0.1:PORT
    dashboard: str  # the dashboard link of the first line (a one-time login link with a token)
    proc: subprocess.Popen[str]


@contextlib.contextmanager
def serve_process(environ: dict[str, str], *args: str) -> Iterator[Served]:
    """``sitesync serve --port 0 --no-worker`` with ``environ``, once its API answers; SIGTERM after."""
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "sitesync", "serve", "--port", "0", "--no-worker", "--log-level", "warning", *args],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        match = re.search(r"dashboard (\S+)  API (http://\S+)/api/v1", line)
        if not match:
            raise RuntimeError(f"sitesync serve did not start: {line}{proc.stderr.read() if proc.stderr else ''}")
        served = Served(line, match.group(2), match.group(1), proc)

        def answers() -> bool:
            httpx.get(served.base + "/api/v1/openapi.json", timeout=5)
            return True

        if not wait_until(answers, 30, 0.05):
            raise RuntimeError("sitesync serve did not answer")
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
