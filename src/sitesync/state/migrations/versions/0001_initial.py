"""Initial schema: projects, settings, representations, files, replicas, representation_sites, pauses, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("representation_id", sa.Integer(), nullable=True),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("source_site", sa.String(length=64), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_at", ["at"], unique=False)
        batch_op.create_index("ix_events_kind", ["kind", "id"], unique=False)
        batch_op.create_index("ix_events_representation_id", ["representation_id", "id"], unique=False)

    op.create_table(
        "pauses",
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("paused_at", sa.Float(), nullable=False),
        sa.Column("paused_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("project", "site", name=op.f("pk_pauses")),
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("name", name=op.f("uq_projects_name")),
    )
    op.create_table(
        "settings",
        sa.Column("scope", sa.String(length=100), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_settings")),
    )
    op.create_table(
        "representations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=1024), nullable=False),
        sa.Column("product", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("total_size", sa.BigInteger(), nullable=False),
        sa.Column("content_rev", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_representations_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_representations")),
        sa.UniqueConstraint(
            "project_id",
            "folder",
            "product",
            "version",
            "name",
            name=op.f("uq_representations_project_id_folder_product_version_name"),
        ),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("representation_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=4200), nullable=False),
        sa.Column("path_key", sa.String(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("hash_algo", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["representation_id"],
            ["representations.id"],
            name=op.f("fk_files_representation_id_representations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
        sa.UniqueConstraint("representation_id", "path_key", name=op.f("uq_files_representation_id_path_key")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_path_key", ["path_key"], unique=False)

    op.create_table(
        "representation_sites",
        sa.Column("representation_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["representation_id"],
            ["representations.id"],
            name=op.f("fk_representation_sites_representation_id_representations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("representation_id", "site", name=op.f("pk_representation_sites")),
    )
    op.create_table(
        "replicas",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("representation_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_failed_at", sa.Float(), nullable=True),
        sa.Column("present_since", sa.Float(), nullable=True),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("source_site", sa.String(length=64), nullable=True),
        sa.Column("provider_ref", sa.String(length=1024), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_replicas_file_id_files"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replicas")),
        sa.UniqueConstraint("file_id", "site", name=op.f("uq_replicas_file_id_site")),
    )
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.create_index(
            "ix_replicas_lease",
            ["lease_expires_at"],
            unique=False,
            sqlite_where=sa.text("lease_owner IS NOT NULL"),
            postgresql_where=sa.text("lease_owner IS NOT NULL"),
        )
        batch_op.create_index("ix_replicas_project_site_status", ["project_id", "site", "status"], unique=False)
        batch_op.create_index(
            "ix_replicas_queue",
            ["project_id", "site", sa.literal_column("priority DESC"), "id"],
            unique=False,
            sqlite_where=sa.text("status = 'queued' AND paused = 0"),
            postgresql_where=sa.text("status = 'queued' AND NOT paused"),
        )
        batch_op.create_index("ix_replicas_representation_site", ["representation_id", "site"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replicas", schema=None) as batch_op:
        batch_op.drop_index("ix_replicas_representation_site")
        batch_op.drop_index(
            "ix_replicas_queue",
            sqlite_where=sa.text("status = 'queued' AND paused = 0"),
            postgresql_where=sa.text("status = 'queued' AND NOT paused"),
        )
        batch_op.drop_index("ix_replicas_project_site_status")
        batch_op.drop_index(
            "ix_replicas_lease",
            sqlite_where=sa.text("lease_owner IS NOT NULL"),
            postgresql_where=sa.text("lease_owner IS NOT NULL"),
        )

    op.drop_table("replicas")
    op.drop_table("representation_sites")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_path_key")

    op.drop_table("files")
    op.drop_table("representations")
    op.drop_table("settings")
    op.drop_table("projects")
    op.drop_table("pauses")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_representation_id")
        batch_op.drop_index("ix_events_kind")
        batch_op.drop_index("ix_events_at")

    op.drop_table("events")
