"""Workfiles (issue 15): mutable artists' working files as a second kind of tracked file, with
their versions (each naming its parent), which version each site holds, conflicts (both contents
kept) and where their other content was placed, locks, and the scanner's stat cache.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NAME = sa.String(length=64)


def _fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{table}.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "workfiles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("root", NAME, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("head_version_id", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("in_conflict", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_workfiles_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workfiles")),
        sa.UniqueConstraint("project_id", "root", "path", name=op.f("uq_workfiles_project_id_root_path")),
    )
    op.create_table(
        "workfile_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workfile_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent_version_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("mtime", sa.Float(), nullable=True),
        sa.Column("made_on_site", NAME, nullable=False),
        sa.Column("made_by_user", sa.String(length=200), nullable=False),
        sa.Column("machine", sa.String(length=200), nullable=False),
        sa.Column("recorded_at", sa.Float(), nullable=False),
        sa.Column("kept_at", sa.Text(), nullable=True),
        sa.Column("kept_site", NAME, nullable=True),
        sa.ForeignKeyConstraint(
            ["workfile_id"],
            ["workfiles.id"],
            name=op.f("fk_workfile_versions_workfile_id_workfiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workfile_versions")),
        sa.UniqueConstraint("workfile_id", "number", name=op.f("uq_workfile_versions_workfile_id_number")),
    )
    op.create_index("ix_workfile_versions_kept", "workfile_versions", ["kept_site", "recorded_at"])
    op.create_table(
        "workfile_copies",
        sa.Column("workfile_id", sa.Integer(), nullable=False),
        sa.Column("site", NAME, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workfile_id"], ["workfiles.id"], name=op.f("fk_workfile_copies_workfile_id_workfiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workfile_id", "site", name=op.f("pk_workfile_copies")),
    )
    op.create_table(
        "workfile_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workfile_id", sa.Integer(), nullable=False),
        sa.Column("site", NAME, nullable=False),
        sa.Column("local_version_id", sa.Integer(), nullable=True),
        sa.Column("incoming_version_id", sa.Integer(), nullable=True),
        sa.Column("conflict_path", sa.Text(), nullable=True),
        sa.Column("incoming_path", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detected_at", sa.Float(), nullable=False),
        sa.Column("resolved_at", sa.Float(), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workfile_id"],
            ["workfiles.id"],
            name=op.f("fk_workfile_conflicts_workfile_id_workfiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workfile_conflicts")),
    )
    op.create_index("ix_workfile_conflicts_open", "workfile_conflicts", ["workfile_id", "resolved_at"])
    op.create_table(
        "workfile_conflict_copies",
        sa.Column("conflict_id", sa.Integer(), nullable=False),
        sa.Column("site", NAME, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("placed_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conflict_id"],
            ["workfile_conflicts.id"],
            name=op.f("fk_workfile_conflict_copies_conflict_id_workfile_conflicts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conflict_id", "site", name=op.f("pk_workfile_conflict_copies")),
    )
    op.create_table(
        "workfile_locks",
        sa.Column("workfile_id", sa.Integer(), nullable=False),
        sa.Column("site", NAME, nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("machine", sa.String(length=200), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workfile_id"], ["workfiles.id"], name=op.f("fk_workfile_locks_workfile_id_workfiles"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("workfile_id", name=op.f("pk_workfile_locks")),
    )
    op.create_table(
        "workfile_scan_facts",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("site", NAME, nullable=False),
        sa.Column("root", NAME, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_workfile_scan_facts_project_id_projects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("project_id", "site", "root", "path", name=op.f("pk_workfile_scan_facts")),
    )


def downgrade() -> None:
    for table in (
        "workfile_scan_facts",
        "workfile_locks",
        "workfile_conflict_copies",
        "workfile_conflicts",
        "workfile_copies",
        "workfile_versions",
        "workfiles",
    ):
        op.drop_table(table)
