"""Faults handled on time: the workers table (each running worker's host, pid and heartbeat, so a
dead worker's leases are reclaimed at once on its own machine and after a short heartbeat timeout
elsewhere) and an index serving "when does the next queued retry fall due" for idle workers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("boot_id", sa.String(length=64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.create_index(
            "ix_replicas_due",
            ["project_id", "site", "next_attempt_at"],
            unique=False,
            sqlite_where=sa.text("status = 'queued' AND paused = 0 AND attempts > 0"),
            postgresql_where=sa.text("status = 'queued' AND NOT paused AND attempts > 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_replicas_due",
            sqlite_where=sa.text("status = 'queued' AND paused = 0 AND attempts > 0"),
            postgresql_where=sa.text("status = 'queued' AND NOT paused AND attempts > 0"),
        )
    op.drop_table("workers")
