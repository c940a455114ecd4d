"""The Alembic migrations create exactly the schema of ``state/schema.py`` on both databases, and
the schema version is enforced: missing, older and newer databases get clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.schema import CreateIndex

from sitesync import Client
from sitesync.errors import DatabaseError
from sitesync.state.database import create_db_engine, head_revision
from sitesync.state.schema import POSTGRESQL_ONLY_INDEXES, metadata
from sitesync.state.store import StateStore


def test_migrations_match_schema(db_url: str, home) -> None:
    result = Client(db=db_url).init()
    assert result["created"] and result["to"] == head_revision()
    engine = create_db_engine(db_url)
    try:

        def described(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
            return name not in POSTGRESQL_ONLY_INDEXES

        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": described})
            diff = compare_metadata(context, metadata)
            indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("representations")}
        assert diff == [], f"migrations and schema.py disagree: {diff}"
        # PostgreSQL gets its own indexes (this server lets the database owner create pg_trgm)
        wanted = set(POSTGRESQL_ONLY_INDEXES) if engine.dialect.name == "postgresql" else set()
        assert indexes & set(POSTGRESQL_ONLY_INDEXES) == wanted
    finally:
        engine.dispose()


def test_partial_indexes_have_their_where_clause_on_each_database(db_url: str, home) -> None:
    # schema.py gives the PostgreSQL WHERE only when a PostgreSQL engine is made (start-up: the
    # option loads SQLAlchemy's PostgreSQL dialect); the DDL must still be the partial index
    Client(db=db_url).init()
    engine = create_db_engine(db_url)
    try:
        indexes = {ix.name: ix for ix in metadata.tables["replicas"].indexes}
        for name, condition in (
            ("ix_replicas_queue", "status = 'queued'"),
            ("ix_replicas_due", "attempts > 0"),
            ("ix_replicas_lease", "lease_owner IS NOT NULL"),
        ):
            ddl = str(CreateIndex(indexes[name]).compile(dialect=engine.dialect))
            assert " WHERE " in ddl and condition in ddl, ddl
        if engine.dialect.name == "postgresql":
            ddl = str(CreateIndex(indexes["ix_replicas_queue"]).compile(dialect=engine.dialect))
            assert ddl.endswith("WHERE status = 'queued' AND NOT paused"), ddl
    finally:
        engine.dispose()


def test_init_is_idempotent(db_url: str, home) -> None:
    c = Client(db=db_url)
    c.init()
    again = c.init()
    assert not again["created"] and again["from"] == again["to"] == head_revision()


def test_missing_and_newer_schema_refused(db_url: str, home) -> None:
    with pytest.raises(DatabaseError, match="run `sitesync init`"):
        StateStore(db_url)
    Client(db=db_url).init()
    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="newer than this sitesync"):
        StateStore(db_url)
    with pytest.raises(DatabaseError, match="newer than this sitesync"):
        Client(db=db_url).init()


def test_queue_claim_uses_the_partial_index_on_sqlite(sqlite_url: str, home) -> None:
    Client(db=sqlite_url).init()
    store = StateStore(sqlite_url)
    q = """EXPLAIN QUERY PLAN SELECT q.id FROM replicas q WHERE q.project_id = 1 AND q.site = 'studio'
           AND q.status = 'queued' AND q.paused = 0 AND q.next_attempt_at <= 1e12
           ORDER BY q.priority DESC, q.id LIMIT 100"""
    with store.engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute(sa.text(q)))
    store.close()
    assert "ix_replicas_queue" in plan and "TEMP B-TREE" not in plan, plan


def test_upgrading_to_the_sync_queue_summaries_fills_them(db_url: str, home) -> None:
    """A database made before the summaries existed gets them computed from its replicas."""
    from alembic import command

    from sitesync.state.database import _alembic_config
    from sitesync.state.summaries import drift
    from tests.apikit import build_catalog
    from tests.conftest import make_studio

    engine = create_db_engine(db_url, create=True)
    studio = make_studio(Path(str(home) + "-studio"), db_url, home)
    try:
        build_catalog(studio)
        with engine.begin() as conn:
            before = {row[0] for row in conn.execute(sa.text("SELECT status FROM site_states"))}
            assert {"present", "failed", "in_progress", "paused", "removing", "queued"} <= before
            command.downgrade(_alembic_config(conn), "0001")
        with engine.begin() as conn:
            assert "site_states" not in sa.inspect(conn).get_table_names()
        studio.client.init()
        with engine.connect() as conn:
            assert drift(conn) == []
            assert conn.execute(sa.text("SELECT count(*) FROM representation_states")).scalar_one() == 11
    finally:
        studio.client.close()
        engine.dispose()
