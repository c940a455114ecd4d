"""Shared fixtures: isolated installations, real SQLite and real PostgreSQL databases, a studio.

PostgreSQL comes from ``SITESYNC_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``);
``scripts/test`` makes sure one answers. Each test gets its own schema in one throwaway database, so
tests are isolated and PostgreSQL tests never skip: if the server is missing they fail loudly.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from sitesync import Client
from sitesync.providers import memory
from sitesync.testing import enable_test_providers
from tests.remote_servers import moto_s3, moto_s3_restricted, rclone_s3, sshd  # noqa: F401 - real S3/SFTP servers
from tests.serial import _serial_or_shared  # noqa: F401 - @pytest.mark.serial under pytest-xdist

# the test-only providers (memory, faulty) resolve in this process and the CLI/worker subprocesses
enable_test_providers()

PG_ADMIN = os.environ.get("SITESYNC_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
SITE_ID = "ws-test"
_schema_counter = itertools.count()


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session; returns its SQLAlchemy URL. Under
    pytest-xdist each worker is its own session and process: one database per worker (named by
    its pid, so parallel runs from other checkouts never meet it), dropped when it finishes."""
    name = f"sitesync_test_{os.getpid()}"
    try:
        admin = psycopg.connect(_pg_conninfo(PG_ADMIN), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is required for this test and is not reachable at {PG_ADMIN}: {exc}. "
            "Run the tests through scripts/test, which starts one."
        )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    yield base.replace("postgresql://", "postgresql+psycopg://")
    with psycopg.connect(_pg_conninfo(PG_ADMIN), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A fresh, empty schema in the session database, selected through the URL's search_path."""
    schema = f"t{os.getpid()}_{next(_schema_counter)}"
    with psycopg.connect(_pg_conninfo(pg_database), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{pg_database}?options=-csearch_path%3D{schema}"
    with psycopg.connect(_pg_conninfo(pg_database), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SITESYNC_HOME", str(path))
    monkeypatch.setenv("SITESYNC_SITE_ID", SITE_ID)
    monkeypatch.delenv("SITESYNC_DB", raising=False)
    return path


@pytest.fixture(autouse=True)
def _clean_memory_provider() -> Iterator[None]:
    yield
    memory.clear()


@dataclass
class Studio:
    """A project ``show`` with a studio storage folder and this machine's local site."""

    client: Client
    db_url: str
    home: Path
    root: Path
    studio_root: Path
    local_root: Path
    workarea: Path
    project: str = "show"
    counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def write(self, name: str, data: bytes | None = None, size: int = 1024) -> Path:
        path = self.workarea / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else os.urandom(size))
        return path

    def studio_file(self, rel: str, data: bytes | None = None, size: int = 1024) -> Path:
        path = self.studio_root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data if data is not None else os.urandom(size))
        return path

    def publish(self, files: list[Path], *, version: Any = None, site: str | None = None, **kw: Any) -> int:
        n = next(self.counter)
        result = self.client.publish(
            self.project,
            folder=kw.pop("folder", "seq01/sh010"),
            product=kw.pop("product", f"product{n}"),
            version=version if version is not None else 1,
            name=kw.pop("name", "data"),
            files=[str(f) for f in files],
            site=site,
            **kw,
        )
        return result.representation_id

    def sync(self, **kw: Any) -> Any:
        return self.client.sync_once(self.project, **kw)

    def local_path(self, template_rel: str) -> Path:
        return self.local_root / "work" / template_rel

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"SITESYNC_HOME": str(self.home), "SITESYNC_DB": self.db_url, "SITESYNC_SITE_ID": SITE_ID})
        return env

    def cli(self, *args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, env=self.env(), check=check, timeout=timeout)


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "sitesync", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"sitesync {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_studio(tmp_path: Path, db_url: str, home: Path, **settings: Any) -> Studio:
    studio_root = tmp_path / "studio"
    local_root = tmp_path / "local"
    workarea = tmp_path / "workarea"
    for p in (studio_root, workarea):
        p.mkdir(parents=True, exist_ok=True)
    client = Client(db=db_url, home=home)
    client.init()
    client.settings_set("local_root", str(local_root), local=True)
    client.create_project("show", {"work": {"any": str(studio_root)}})
    defaults = {"active_site": "local", "remote_site": "studio", "retry_backoff": 0, "loop_delay": 1}
    defaults.update(settings)
    for key, value in defaults.items():
        client.settings_set(key, value, project="show")
    return Studio(client, db_url, home, tmp_path, studio_root, local_root, workarea)


def assert_site_states_consistent(client: Client) -> None:
    """The Sync Queue summaries equal a fresh aggregate of the replicas: every write path kept them."""
    from sitesync.state.summaries import drift

    with client.store.engine.connect() as conn:
        problems = drift(conn)
    assert not problems, "site_states drifted from the replicas:\n" + "\n".join(problems[:10])


@pytest.fixture
def studio(tmp_path: Path, db_url: str, home: Path) -> Iterator[Studio]:
    s = make_studio(tmp_path, db_url, home)
    yield s
    assert_site_states_consistent(s.client)
    s.client.close()


@pytest.fixture
def sqlite_studio(tmp_path: Path, sqlite_url: str, home: Path) -> Iterator[Studio]:
    s = make_studio(tmp_path, sqlite_url, home)
    yield s
    assert_site_states_consistent(s.client)
    s.client.close()


def db_snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every sitesync table, to prove a refused command changed nothing."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        out = {}
        with engine.connect() as conn:
            for name, table in sorted(meta.tables.items()):
                cols = list(table.columns)
                out[name] = sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(*cols)))
        return out
    finally:
        engine.dispose()


def keep_publishes_local(studio: Studio) -> None:
    """Make the project's remote site one that is switched off, so publishes stay on this machine
    (active and remote may not be the same site)."""
    c = studio.client
    c.add_site("offline", "local_drive", [f"work={studio.root / 'offline'}"])
    c.settings_set("sites.offline.enabled", False, project=studio.project)
    c.settings_set("remote_site", "offline", project=studio.project)


def define_site(client: Client, name: str, provider: str, roots: list[str], options: dict[str, Any], **kw: Any) -> Any:
    """``client.add_site`` with the options only local settings may hold (key files, credential
    files, ``env:`` secrets...) given as this machine's local options, as an admin would."""
    from sitesync.settings.scopes import split_local_options

    shared, mine = split_local_options(provider, options)
    return client.add_site(name, provider, roots, shared, local_options=mine, **kw)


@contextmanager
def module_studio(factory: pytest.TempPathFactory, name: str) -> Iterator[Studio]:
    """A studio (SQLite) shared by the tests of one module, with its own home and site id; the
    caller adds its sites. For tests that each leave the studio as they found it."""
    tmp = factory.mktemp(name)
    patch = pytest.MonkeyPatch()
    home = tmp / "home"
    patch.setenv("SITESYNC_HOME", str(home))
    patch.setenv("SITESYNC_SITE_ID", SITE_ID)
    studio = make_studio(tmp, f"sqlite:///{tmp / 'state.db'}", home)
    try:
        yield studio
    finally:
        studio.client.close()
        patch.undo()
