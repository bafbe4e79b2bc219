"""orders: drop the channel/time and product indexes (each one slows every imported line)

"The latest imported order" reads ix_orders_ordered_at backwards instead; product counts scan
the table either way.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_orders_channel_time", table_name="orders")
    op.drop_index("ix_orders_product_id", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_product_id", "orders", ["product_id"], unique=False)
    op.create_index("ix_orders_channel_time", "orders", ["channel", "ordered_at"], unique=False)
