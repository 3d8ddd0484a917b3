"""Pending webhooks by shop: each shop's drain job takes its oldest pending event by a partial
index, however many processed events the shop's history holds.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 04:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_webhook_events_pending",
            ["shop_id", "id"],
            unique=False,
            postgresql_where=sa.text(PENDING),
            sqlite_where=sa.text(PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_webhook_events_pending",
            postgresql_where=sa.text(PENDING),
            sqlite_where=sa.text(PENDING),
        )
