"""Scale: per-(project, site) counters of the summaries (``site_counts``) for the project status
summary, per-project representation counts (``project_counts``) for the Sync Queue's total, the
representation's total size on each summary row (so a counter can subtract an old row), and on
PostgreSQL a trigram index for the Sync Queue's text filter and the default order's index with the
id included (deep pages read the index only).

The counters are filled from the existing summaries. The trigram index needs the ``pg_trgm``
extension (trusted since PostgreSQL 13: a database owner may create it); where it cannot be
created the migration goes on without the index and the text filter scans, as before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_COUNTED = (
    "files_present",
    "files_queued",
    "files_in_progress",
    "files_failed",
    "files_removing",
    "files_missing",
    "files_no_source",
    "bytes_present",
    "total_size",
)
# on the expression the Sync Queue's text filter matches on PostgreSQL (listing.search_text)
TEXT_INDEX = "ix_representations_text_trgm"  # in schema.POSTGRESQL_ONLY_INDEXES
# the Sync Queue's default order with the id included: deep pages are index-only scans
FOLDER_ORDER_INDEX = "ix_representations_folder_order"  # in schema.POSTGRESQL_ONLY_INDEXES


def upgrade() -> None:
    op.add_column("site_states", sa.Column("total_size", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.execute(
        "UPDATE site_states SET total_size = "
        "(SELECT rp.total_size FROM representations rp WHERE rp.id = site_states.representation_id)"
    )
    op.create_table(
        "site_counts",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("representations", sa.BigInteger(), nullable=False),
        *(sa.Column(c, sa.BigInteger(), nullable=False) for c in _COUNTED),
        sa.PrimaryKeyConstraint("project_id", "site", "slot", name=op.f("pk_site_counts")),
    )
    sums = ", ".join(f"SUM({c})" for c in _COUNTED)
    op.execute(
        f"INSERT INTO site_counts (project_id, site, slot, representations, {', '.join(_COUNTED)}) "
        f"SELECT project_id, site, 0, COUNT(*), {sums} FROM site_states GROUP BY project_id, site"
    )
    op.create_table(
        "project_counts",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("representations", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "slot", name=op.f("pk_project_counts")),
    )
    op.execute(
        "INSERT INTO project_counts (project_id, slot, representations) "
        "SELECT project_id, 0, COUNT(*) FROM representations GROUP BY project_id"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {FOLDER_ORDER_INDEX} ON representations (project_id, folder, product, version, name) "
            "INCLUDE (id)"
        )
        create_text_index(op.get_bind())


def create_text_index(conn: sa.Connection) -> bool:
    """PostgreSQL: the trigram index of the text filter, creating ``pg_trgm`` if it is missing.
    False (and nothing changed) where the extension cannot be created."""
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    # the operator class is named with the extension's schema, which need not be on the search path
    schema = conn.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar_one()
    ops = f'"{schema}".gin_trgm_ops'
    conn.execute(
        sa.text(
            f"CREATE INDEX {TEXT_INDEX} ON representations USING gin "
            f"(lower((folder || ' ' || product || ' ' || name)) {ops})"
        )
    )
    return True


def downgrade() -> None:
    op.execute(f"DROP INDEX IF EXISTS {TEXT_INDEX}")
    op.execute(f"DROP INDEX IF EXISTS {FOLDER_ORDER_INDEX}")
    op.drop_table("project_counts")
    op.drop_table("site_counts")
    op.drop_column("site_states", "total_size")
