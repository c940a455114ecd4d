"""Opening the state database: URL handling, SQLite tuning, schema version checks and migrations.

SQLite runs in WAL mode with a busy timeout; a write transaction starts with ``BEGIN IMMEDIATE`` so
two writers never deadlock on a lock upgrade. PostgreSQL uses psycopg 3. ``migrate()`` is what
``sitesync init`` runs; every other command calls ``check_schema()`` first.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import DatabaseError as SADatabaseError

from sitesync.errors import DatabaseError, DatabaseUnreachableError
from sitesync.private import FILE_MODE, describe_os_error, ensure_private_folder

if TYPE_CHECKING:  # alembic is imported only to migrate or to explain a schema mismatch (startup time)
    from alembic.config import Config
    from sqlalchemy.dialects.postgresql import Insert as PgInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def mask_url(url: str | sa.URL) -> str:
    """The URL as it may be shown: the password replaced by ***."""
    try:
        parsed = make_url(str(url)) if not isinstance(url, sa.URL) else url
    except ArgumentError:
        return "<unparseable database URL>"
    return parsed.render_as_string(hide_password=True)


def normalize_url(url: str) -> sa.URL:
    """Accept ``postgresql://`` and ``postgres://`` (psycopg 3 is used) and plain ``sqlite:///``."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"cannot parse database URL {url!r}; use sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r} in {mask_url(parsed)}; use SQLite or PostgreSQL"
        )
    return parsed


def _sqlite_setup(engine: Engine, path: Path | None) -> None:
    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        problem = sqlite_problem(path, context.original_exception)
        if problem is not None:
            raise DatabaseError(problem) from None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # sitesync emits BEGIN itself (see _on_begin)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


_SQLITE_WRITE_FAILURES = ("readonly database", "disk is full", "unable to open database file", "disk i/o error")


def sqlite_problem(path: Path | None, exc: BaseException | None) -> str | None:
    """What is wrong when SQLite cannot write or open its file (read-only, full, not permitted),
    in one line; ``None`` for any other error."""
    text = str(exc).lower()
    if path is None or not any(marker in text for marker in _SQLITE_WRITE_FAILURES):
        return None
    folder = path.parent
    problem = None
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            problem = "the file system holding it is read-only; remount it read-write or use another --db"
        elif "disk is full" in text or os.statvfs(folder).f_bavail == 0:
            problem = "no space is left on the device holding it; free some space and retry"
        elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            problem = "this user may not write it or its folder; check their owner and permissions"
    except OSError as err:
        problem = describe_os_error(err)
    if problem is None:
        return None
    return f"cannot write the state database {path}: {problem}; nothing was changed"


def sqlite_file(url: str | sa.URL) -> Path | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = normalize_url(str(url)) if not isinstance(url, sa.URL) else url
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def upsert_insert(dialect: str, table: sa.Table) -> PgInsert | SqliteInsert:
    """``INSERT`` with ``ON CONFLICT`` for this dialect. Each dialect's module is imported when first
    used: a process on SQLite never loads the PostgreSQL dialect (about 60 ms of start-up)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def create_db_engine(url: str, *, create: bool = False) -> Engine:
    """An engine for ``url``. A SQLite file (and its folder) is only created when ``create`` is set:
    any command but ``init`` refuses a missing database instead of leaving an empty file behind."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_file(parsed)
        if path is not None and not path.exists():
            if not create:
                raise DatabaseError(f"no sitesync state database at {path}; run `sitesync init` to create it")
            _create_private_file(path)
        engine = sa.create_engine(parsed, connect_args={"timeout": 60, "check_same_thread": False})
        _sqlite_setup(engine, path)
        return engine
    from sitesync.state.schema import add_postgresql_options

    add_postgresql_options()  # the dialect is loaded now anyway
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 10},
    )


def _create_private_file(path: Path) -> None:
    """An empty SQLite database readable by its owner only (SQLite gives its -wal and -shm files
    the same mode), in a folder created 0700 when missing."""
    ensure_private_folder(path.parent, what="folder of the state database")
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    except OSError as exc:
        raise DatabaseError(f"cannot create the state database {path}: {describe_os_error(exc)}") from None


def sqlite_paths(path: Path) -> list[Path]:
    """The database file and the write-ahead log files SQLite keeps next to it."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return {rev.revision for rev in script.walk_revisions()}


@contextlib.contextmanager
def translate_connect_errors(engine: Engine) -> Iterator[None]:
    """Turn 'cannot connect' driver errors into one clear ``DatabaseError`` (on a database server,
    ``DatabaseUnreachableError``: the server may only be restarting)."""
    try:
        yield
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        if engine.dialect.name == "sqlite":
            raise DatabaseError(
                f"cannot use the state database {mask_url(engine.url)}: {reason}; check --db / SITESYNC_DB"
            ) from None
        raise DatabaseUnreachableError(
            f"cannot use the state database {mask_url(engine.url)}: {reason}; "
            "check --db / SITESYNC_DB and that the server is running"
        ) from None
    except SADatabaseError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"the state database {mask_url(engine.url)} is not usable: {reason}; "
            "is it a sitesync database? run `sitesync init` to create one"
        ) from None


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with translate_connect_errors(engine), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.M)


@functools.cache
def _head_from_files() -> str | None:
    """The head revision read from the migration files' text, without importing alembic; None if
    that is not clear-cut (then alembic decides)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        rev = _REVISION.search(text)
        if rev:
            revisions.add(rev.group(1))
        parents.update(_DOWN.findall(text))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stored_revision(engine: Engine) -> str | None:
    """The database's schema revision by plain SQL; None if there is none (or no table)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.DBAPIError:
        return None
    return rows[0][0] if len(rows) == 1 else None


def check_schema(engine: Engine) -> None:
    """Refuse to work on a database that is missing, older or newer than this code."""
    head = _head_from_files()
    if head is not None and _stored_revision(engine) == head:
        return  # the usual case, decided without loading alembic
    rev = current_revision(engine)
    head = head_revision()
    if rev == head:
        return
    where = mask_url(engine.url)
    if rev is None:
        raise DatabaseError(f"no sitesync state in {where}; run `sitesync init` to create it")
    if rev not in _known_revisions():
        raise DatabaseError(
            f"the state database {where} has schema revision {rev}, newer than this sitesync knows "
            f"({head}); upgrade sitesync on this machine"
        )
    raise DatabaseError(f"the state database {where} is at an older schema ({rev}); run `sitesync init` to upgrade")


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema to head. Returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    if before is not None and before not in _known_revisions():
        raise DatabaseError(
            f"the state database {mask_url(engine.url)} has schema revision {before}, newer than this "
            "sitesync knows; upgrade sitesync on this machine"
        )
    with translate_connect_errors(engine), engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    return before, head_revision()
