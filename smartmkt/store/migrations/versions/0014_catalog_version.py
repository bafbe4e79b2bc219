"""catalog version: products carry the version of the write that last changed them, so serving
processes follow the catalog without a retrain (issue 18)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    catalog_state = op.create_table('catalog_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.bulk_insert(catalog_state, [{'id': 1, 'version': 0}])
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('catalog_version', sa.Integer(), nullable=True))
        batch.create_index('ix_products_catalog_version', ['catalog_version'])


def downgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.drop_index('ix_products_catalog_version')
        batch.drop_column('catalog_version')
    op.drop_table('catalog_state')
