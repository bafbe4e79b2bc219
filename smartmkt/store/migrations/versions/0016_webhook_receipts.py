"""webhook receipts: shop platforms' webhook deliveries already processed (issue 18)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_receipts',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('platform', sa.String(length=16), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_index('ix_webhook_receipts_received_at', 'webhook_receipts', ['received_at'])


def downgrade() -> None:
    op.drop_index('ix_webhook_receipts_received_at', table_name='webhook_receipts')
    op.drop_table('webhook_receipts')
