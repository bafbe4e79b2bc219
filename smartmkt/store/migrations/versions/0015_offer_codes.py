"""offer codes: each offer's discount code and its redemption against a shop order (issue 18);
offers made before get a code too

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # as smartmkt.offers.codes (migrations import no app code)


def _code() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(16))
    return "SMK-" + "-".join(body[i:i + 4] for i in range(0, 16, 4))


def upgrade() -> None:
    with op.batch_alter_table('offers') as batch:
        batch.add_column(sa.Column('code', sa.String(length=24), nullable=True))
        batch.add_column(sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('redeemed_order_ref', sa.String(length=128), nullable=True))
    offers = sa.table('offers', sa.column('id', sa.Integer), sa.column('code', sa.String))
    conn = op.get_bind()
    ids = [row[0] for row in conn.execute(sa.select(offers.c.id).where(offers.c.code.is_(None)))]
    for offer_id in ids:
        conn.execute(sa.update(offers).where(offers.c.id == offer_id).values(code=_code()))
    op.create_index('uq_offers_code', 'offers', ['code'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_offers_code', table_name='offers')
    with op.batch_alter_table('offers') as batch:
        batch.drop_column('redeemed_order_ref')
        batch.drop_column('redeemed_at')
        batch.drop_column('code')
