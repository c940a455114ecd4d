"""Connection handling shared by every part of the state store (see ``store.py``)."""

from __future__ import annotations

import contextlib
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


def chunked(items: Sequence[Any], size: int = 2000) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with translate_connect_errors(self.engine):
            conn = self.engine.connect()
        try:
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
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def ping(self) -> None:
        with self._read() as conn:
            conn.execute(sa.text("SELECT 1"))

    # ------------------------------------------------------------------ events

    @staticmethod
    def _events(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        batch = []
        now = time.time()
        for row in rows:
            full = {
                "at": now,
                "project_id": None,
                "representation_id": None,
                "file_id": None,
                "site": None,
                "source_site": None,
                "bytes": None,
                "duration": None,
                "message": None,
            }
            full.update(row)
            batch.append(full)
        if batch:
            conn.execute(s.events.insert(), batch)

    def add_event(self, kind: str, actor: str, **fields: Any) -> None:
        with self._write() as conn:
            self._events(conn, [{"kind": kind, "actor": actor, **fields}])
