"""Badge generations: one row per shop, bumped with any change to what the storefront badge API
answers, so the API's cache is keyed by it (a table of its own so the bump never waits on the
shop row); shops found by domain alone (the public endpoints) by index.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-01 04:08:39.513489
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "badge_generations",
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("shop_id"),
    )
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.create_index("ix_shops_domain", ["domain"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_index("ix_shops_domain")
    op.drop_table("badge_generations")
