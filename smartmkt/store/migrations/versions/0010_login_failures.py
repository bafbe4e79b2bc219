"""login failures (the console's login rate limit, issue 7)

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-27 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_login_failures_key_time', 'login_failures', ['key_hash', 'failed_at'], unique=False)
    op.create_index(op.f('ix_login_failures_failed_at'), 'login_failures', ['failed_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_login_failures_failed_at'), table_name='login_failures')
    op.drop_index('ix_login_failures_key_time', table_name='login_failures')
    op.drop_table('login_failures')
