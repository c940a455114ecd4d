"""Connection handling shared by every part of the state store (see ``store.py``)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sitesync.state import schema as s
from sitesync.state.database import (
    check_schema,
    create_db_engine,
    mask_url,
    migrate,
    translate_connect_errors,
)
from sitesync.state.dberrors import database_errors


def chunked(items: Sequence[Any], size: int = 2000) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def ids_in(column: sa.ColumnElement[Any], dialect: str, name: str = "b_ids") -> sa.ColumnElement[bool]:
    """``column IN (<integers>)`` with the whole list passed as ONE bound parameter (see ``ids_param``):
    ``= ANY(array)`` on PostgreSQL, ``json_each`` on SQLite. One statement for any number of ids,
    and no per-id placeholders for SQLAlchemy and the driver to build."""
    if dialect == "postgresql":
        return column == sa.any_(sa.bindparam(name, type_=sa.ARRAY(sa.Integer)))
    return column.in_(sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam(name))))


def ids_param(ids: Iterable[int], dialect: str) -> Any:
    values = [int(i) for i in ids]
    return values if dialect == "postgresql" else json.dumps(values)


_INSERTS: dict[tuple[str, str, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}


def insert_many(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (dicts with the same keys, plain values) in one round trip.

    SQLAlchemy's executemany builds and processes parameters row by row in Python, and psycopg sends
    one INSERT per row; for the worker's per-file history rows that dominated a batch. Here the
    statement is compiled once: PostgreSQL gets one ``INSERT ... SELECT FROM unnest(<one array per
    column>)``, SQLite one DBAPI ``executemany`` (a C loop in-process).
    """
    if not rows:
        return
    keys = tuple(rows[0])
    cache_key = (conn.dialect.name, table.name, keys)
    entry = _INSERTS.get(cache_key)
    if entry is None:
        if conn.dialect.name == "postgresql":
            columns = ", ".join(keys)
            arrays = ", ".join(f"%({k})s::{table.c[k].type.compile(conn.dialect)}[]" for k in keys)
            entry = (f"INSERT INTO {table.name} ({columns}) SELECT * FROM unnest({arrays})", keys)
        else:
            compiled = table.insert().inline().values({k: sa.bindparam(k) for k in keys}).compile(dialect=conn.dialect)
            entry = (compiled.string, tuple(compiled.positiontup or keys))
        _INSERTS[cache_key] = entry
    sql, order = entry
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(sql, {k: [row[k] for row in rows] for k in order})
    else:
        conn.exec_driver_sql(sql, [tuple(row[k] for k in order) for row in rows])


def event(
    kind: str,
    actor: str,
    *,
    project_id: int | None = None,
    representation_id: int | None = None,
    file_id: int | None = None,
    site: str | None = None,
    source_site: str | None = None,
    nbytes: int | None = None,
    duration: float | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """One row of the event history, for ``StoreBase._events`` (which stamps the time): the one
    place that knows an event's columns, so no write path builds the dict by hand."""
    return {
        "kind": kind,
        "actor": actor,
        "project_id": project_id,
        "representation_id": representation_id,
        "file_id": file_id,
        "site": site,
        "source_site": source_site,
        "bytes": nbytes,
        "duration": duration,
        "message": message,
    }


class StoreBase:
    def __init__(self, url: str, *, check: bool = True) -> None:
        self.url = url
        self.engine = create_db_engine(url, create=not check)
        self.dialect = self.engine.dialect.name
        if check:
            check_schema(self.engine)

    @property
    def display_url(self) -> str:
        return mask_url(self.engine.url)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def close(self) -> None:
        self.engine.dispose()

    def migrate(self) -> tuple[str | None, str]:
        return migrate(self.engine)

    # ------------------------------------------------------------------ connections

    # Every connection is used inside ``database_errors``: no SQLAlchemy exception leaves the
    # store (see ``dberrors.py``), and the public methods retry what the database aborted as busy.

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with translate_connect_errors(self.engine):
            conn = self.engine.connect()
        try:
            with database_errors(self.engine):
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_connect_errors(self.engine):
            conn = self.engine.connect()
        try:
            with database_errors(self.engine), conn.begin():
                yield conn
        finally:
            conn.close()

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # ------------------------------------------------------------------ waking other machines

    def notify_workers(self) -> None:
        """Wake the workers of every machine sharing this database (PostgreSQL; see ``notify.py``)."""
        if not self.is_postgres:
            return
        from sitesync.state.notify import notify_workers

        with self._write() as conn:
            notify_workers(conn)

    def notification_relay(self, on_notify: Any) -> Any:
        """A ``NotificationRelay`` calling ``on_notify`` when any machine adds work; None on SQLite."""
        if not self.is_postgres:
            return None
        from sitesync.state.notify import NotificationRelay

        return NotificationRelay(self.engine.url, on_notify)

    # ------------------------------------------------------------------ events

    @staticmethod
    def _events(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        """Append ``event()`` rows to the history, stamped now unless a row carries its own ``at``."""
        now = time.time()
        batch = [{"at": now, **row} for row in rows]
        if batch:
            insert_many(conn, s.events, batch)

    def add_event(self, kind: str, actor: str, **fields: Any) -> None:
        with self._write() as conn:
            self._events(conn, [event(kind, actor, **fields)])
