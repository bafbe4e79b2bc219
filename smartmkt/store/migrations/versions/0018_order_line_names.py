"""order line names: where a product's title came from (a products file, an orders file's product
name, or neither: a placeholder), so a products file wins over an orders file; a customer's
country (issue 19)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products') as batch:
        batch.add_column(sa.Column('title_source', sa.String(length=16), nullable=True))
    with op.batch_alter_table('customers') as batch:
        batch.add_column(sa.Column('country', sa.String(length=64), nullable=True))
    products = sa.table('products', sa.column('title_source', sa.String), sa.column('imputed', sa.JSON))
    placeholder = sa.cast(products.c.imputed, sa.Text).like('%"title"%')
    op.execute(products.update().where(placeholder).values(title_source='placeholder'))
    op.execute(products.update().where(products.c.title_source.is_(None)).values(title_source='products'))


def downgrade() -> None:
    with op.batch_alter_table('customers') as batch:
        batch.drop_column('country')
    with op.batch_alter_table('products') as batch:
        batch.drop_column('title_source')
