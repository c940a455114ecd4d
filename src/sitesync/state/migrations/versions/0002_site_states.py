"""Sync Queue: ``site_states`` (one row per representation and site, aggregated from its replicas)
and ``representation_states`` (one row per representation, from its site rows), both filled from
the existing replicas; indexes for sorting representations and for events by project.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The same rule as sitesync.status_rollup.summarize_site_state, frozen here as it was at this revision.
_BACKFILL = """
INSERT INTO site_states (
    representation_id, site, project_id, status, files_present, files_queued, files_in_progress,
    files_failed, files_removing, bytes_present, bytes_in_flight, progress, priority, attempts,
    last_error, updated_at)
SELECT g.representation_id, g.site, rp.project_id,
    CASE WHEN g.n_removing > 0 THEN 'removing'
         WHEN g.n_failed > 0 THEN 'failed'
         WHEN g.n_in_progress > 0 THEN 'in_progress'
         WHEN g.n_queued > 0 AND g.n_paused > 0 THEN 'paused'
         WHEN g.n_queued > 0 THEN 'queued'
         WHEN g.n_present > 0 AND g.n_present >= rp.file_count THEN 'present'
         WHEN g.n_present > 0 THEN 'partial'
         ELSE 'none' END,
    g.n_present, g.n_queued, g.n_in_progress, g.n_failed, g.n_removing, g.b_present, g.b_flight,
    CASE WHEN rp.total_size > 0 THEN
            CASE WHEN (g.b_present + g.b_flight) >= rp.total_size THEN 1.0
                 ELSE CAST(g.b_present + g.b_flight AS DOUBLE PRECISION) / rp.total_size END
         WHEN rp.file_count > 0 THEN
            CASE WHEN g.n_present >= rp.file_count THEN 1.0
                 ELSE CAST(g.n_present AS DOUBLE PRECISION) / rp.file_count END
         ELSE 0.0 END,
    g.prio, g.attempts, g.err, g.upd
FROM (
    SELECT r.representation_id, r.site,
        SUM(CASE WHEN r.status = 'present' THEN 1 ELSE 0 END) AS n_present,
        SUM(CASE WHEN r.status = 'queued' THEN 1 ELSE 0 END) AS n_queued,
        SUM(CASE WHEN r.status = 'in_progress' THEN 1 ELSE 0 END) AS n_in_progress,
        SUM(CASE WHEN r.status = 'failed' THEN 1 ELSE 0 END) AS n_failed,
        SUM(CASE WHEN r.status = 'removing' THEN 1 ELSE 0 END) AS n_removing,
        SUM(CASE WHEN r.status = 'queued' AND r.paused THEN 1 ELSE 0 END) AS n_paused,
        SUM(CASE WHEN r.status = 'present' THEN f.size ELSE 0 END) AS b_present,
        SUM(CASE WHEN r.status = 'in_progress' THEN r.bytes_done ELSE 0 END) AS b_flight,
        MAX(r.priority) AS prio,
        MAX(r.attempts) AS attempts,
        MAX(CASE WHEN r.status IN ('failed', 'queued') THEN r.last_error END) AS err,
        MAX(r.updated_at) AS upd
    FROM replicas r JOIN files f ON f.id = r.file_id
    GROUP BY r.representation_id, r.site
) g
JOIN representations rp ON rp.id = g.representation_id
"""

_RANKED = """CASE status WHEN 'failed' THEN 0 WHEN 'removing' THEN 1 WHEN 'in_progress' THEN 2
    WHEN 'queued' THEN 3 WHEN 'paused' THEN 4 WHEN 'partial' THEN 5 WHEN 'present' THEN 6 ELSE 7 END"""

_BACKFILL_OVERALL = f"""
INSERT INTO representation_states (representation_id, project_id, status, status_site, priority, updated_at)
SELECT representation_id, project_id, status, site, priority, updated_at FROM (
    SELECT representation_id, project_id, status, site,
        ROW_NUMBER() OVER (PARTITION BY representation_id ORDER BY {_RANKED}, site) AS position,
        MAX(priority) OVER (PARTITION BY representation_id) AS priority,
        MAX(updated_at) OVER (PARTITION BY representation_id) AS updated_at
    FROM site_states
) ranked
WHERE position = 1
"""

_SORTED_COLUMNS = ("product", "version", "name", "total_size", "file_count", "updated_at")


def upgrade() -> None:
    op.create_table(
        "site_states",
        sa.Column("representation_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("files_present", sa.Integer(), nullable=False),
        sa.Column("files_queued", sa.Integer(), nullable=False),
        sa.Column("files_in_progress", sa.Integer(), nullable=False),
        sa.Column("files_failed", sa.Integer(), nullable=False),
        sa.Column("files_removing", sa.Integer(), nullable=False),
        sa.Column("bytes_present", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in_flight", sa.BigInteger(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["representation_id"],
            ["representations.id"],
            name=op.f("fk_site_states_representation_id_representations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("representation_id", "site", name=op.f("pk_site_states")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("site_states", schema=None) as batch_op:
        for column in ("status", "progress", "updated_at"):
            batch_op.create_index(
                f"ix_site_states_project_site_{column}",
                ["project_id", "site", column, "representation_id"],
                unique=False,
            )
    op.execute(_BACKFILL)

    op.create_table(
        "representation_states",
        sa.Column("representation_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_site", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["representation_id"],
            ["representations.id"],
            name=op.f("fk_representation_states_representation_id_representations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("representation_id", name=op.f("pk_representation_states")),
    )
    with op.batch_alter_table("representation_states", schema=None) as batch_op:
        for column in ("status", "priority"):
            batch_op.create_index(
                f"ix_representation_states_project_id_{column}",
                ["project_id", column, "representation_id"],
                unique=False,
            )
    op.execute(_BACKFILL_OVERALL)

    with op.batch_alter_table("representations", schema=None) as batch_op:
        for column in _SORTED_COLUMNS:
            batch_op.create_index(
                f"ix_representations_project_id_{column}_id", ["project_id", column, "id"], unique=False
            )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_project_id", ["project_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("representations", schema=None) as batch_op:
        for column in _SORTED_COLUMNS:
            batch_op.drop_index(f"ix_representations_project_id_{column}_id")
    with op.batch_alter_table("representation_states", schema=None) as batch_op:
        for column in ("status", "priority"):
            batch_op.drop_index(f"ix_representation_states_project_id_{column}")
    op.drop_table("representation_states")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_project_id")
    with op.batch_alter_table("site_states", schema=None) as batch_op:
        for column in ("status", "progress", "updated_at"):
            batch_op.drop_index(f"ix_site_states_project_site_{column}")
    op.drop_table("site_states")
