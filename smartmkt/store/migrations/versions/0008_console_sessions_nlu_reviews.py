"""console sessions and NLU reviews

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 09:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('console_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['console_users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_console_sessions_expires', 'console_sessions', ['expires_at'], unique=False)
    op.create_index('ix_console_sessions_user', 'console_sessions', ['user_id'], unique=False)
    op.create_table('nlu_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.String(length=255), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('intent', sa.String(length=255), nullable=False),
    sa.Column('entities', sa.JSON(), nullable=False),
    sa.Column('reviewed_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reviewed_by'], ['console_users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    op.create_index(op.f('ix_nlu_reviews_created_at'), 'nlu_reviews', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_nlu_reviews_created_at'), table_name='nlu_reviews')
    op.drop_table('nlu_reviews')
    op.drop_index('ix_console_sessions_user', table_name='console_sessions')
    op.drop_index('ix_console_sessions_expires', table_name='console_sessions')
    op.drop_table('console_sessions')
