"""Studio workflows: links between representations (a workfile and what it loads), and an index
serving preferred-content rules (a project's representations in publish order).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("representation_id", sa.Integer(), nullable=False),
        sa.Column("linked_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["representation_id"],
            ["representations.id"],
            name=op.f("fk_links_representation_id_representations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["linked_id"],
            ["representations.id"],
            name=op.f("fk_links_linked_id_representations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("representation_id", "linked_id", name=op.f("pk_links")),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_linked_id", ["linked_id"], unique=False)
    with op.batch_alter_table("representations", schema=None) as batch_op:
        batch_op.create_index("ix_representations_project_id_id", ["project_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("representations", schema=None) as batch_op:
        batch_op.drop_index("ix_representations_project_id_id")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index("ix_links_linked_id")
    op.drop_table("links")
