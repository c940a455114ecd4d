"""Physical identity: site storage markers, what each replica last verified at its location, the
lost ("missing") and "no_source" replica states counted in the Sync Queue summaries, a pause flag on
the summaries, and representation-wide pauses that also hold sites requested later.

Existing verified copies get the size and hash of their file as what was last seen there (their
storage fingerprint is unknown until the next verification); summaries get the pause flag of their
replicas.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_markers",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("location_key", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=4200), nullable=False),
        sa.Column("marker_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.Column("recorded_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("site", "location_key", name=op.f("pk_storage_markers")),
    )
    # plain ALTER TABLE (SQLite >= 3.35 adds and drops columns natively): batch mode would copy and
    # drop the tables, and dropping ``representations`` with foreign keys on cascades to its files
    op.add_column("replicas", sa.Column("seen_size", sa.BigInteger(), nullable=True))
    op.add_column("replicas", sa.Column("seen_hash", sa.String(length=160), nullable=True))
    op.add_column("replicas", sa.Column("seen_mtime", sa.Float(), nullable=True))
    op.add_column("representations", sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("site_states", sa.Column("files_missing", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column(
        "site_states", sa.Column("files_no_source", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column("site_states", sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column(
        "representation_states", sa.Column("paused", sa.Boolean(), server_default=sa.text("false"), nullable=False)
    )

    op.execute(
        """
        UPDATE replicas SET
            seen_size = (SELECT f.size FROM files f WHERE f.id = replicas.file_id),
            seen_hash = (SELECT f.hash_algo || ':' || f.hash FROM files f WHERE f.id = replicas.file_id)
        WHERE status IN ('present', 'removing')
        """
    )
    op.execute(
        """
        UPDATE site_states SET paused = EXISTS (
            SELECT 1 FROM replicas r
            WHERE r.representation_id = site_states.representation_id AND r.site = site_states.site AND r.paused
        )
        """
    )
    op.execute(
        """
        UPDATE representation_states SET paused = EXISTS (
            SELECT 1 FROM site_states t
            WHERE t.representation_id = representation_states.representation_id AND t.paused
        )
        """
    )


def downgrade() -> None:
    for table, column in (
        ("representation_states", "paused"),
        ("site_states", "paused"),
        ("site_states", "files_no_source"),
        ("site_states", "files_missing"),
        ("representations", "paused"),
        ("replicas", "seen_mtime"),
        ("replicas", "seen_hash"),
        ("replicas", "seen_size"),
    ):
        op.drop_column(table, column)
    op.drop_table("storage_markers")
