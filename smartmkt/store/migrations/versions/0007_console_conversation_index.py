"""console conversation index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 09:00:00

The marketer console's summary of Rasa's conversations (Rasa's own ``events`` table is Rasa's and
is never touched here). Text search: on SQLite an FTS5 table over console_conversations.search_text
kept in step by triggers; on PostgreSQL a GIN index on to_tsvector('simple', search_text). Neither
is declared in the models (smartmkt.store.migrate.include_name leaves them out of comparisons).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

RECENT = ('last_event_at', 'sender_id')
PARTIAL = {
    'ix_console_conversations_voice': 'voice_turns > 0',
    'ix_console_conversations_text': 'turns > voice_turns',
    'ix_console_conversations_fallback': 'fallback_turns > 0',
    'ix_console_conversations_offers': 'offers_made > 0',
}
FTS = 'console_conversation_search'


def upgrade() -> None:
    op.create_table('console_conversations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sender_id', sa.String(length=255), nullable=False),
    sa.Column('customer_ref', sa.String(length=255), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_id', sa.Integer(), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.Column('voice_turns', sa.Integer(), nullable=False),
    sa.Column('fallback_turns', sa.Integer(), nullable=False),
    sa.Column('min_confidence', sa.Float(), nullable=True),
    sa.Column('offers_made', sa.Integer(), nullable=False),
    sa.Column('first_message', sa.Text(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('turn_fallback', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sender_id')
    )
    op.create_index('ix_console_conversations_recent', 'console_conversations', list(RECENT), unique=False)
    for name, condition in PARTIAL.items():
        op.create_index(name, 'console_conversations', list(RECENT), unique=False,
                        sqlite_where=sa.text(condition), postgresql_where=sa.text(condition))
    op.create_index('ix_console_conversations_started', 'console_conversations', ['started_at'], unique=False)
    op.create_index('ix_console_conversations_customer', 'console_conversations', ['customer_ref', 'last_event_at'], unique=False)
    op.create_index('ix_console_conversations_confidence', 'console_conversations', ['min_confidence'], unique=False)

    op.create_table('console_conversation_days',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.Column('voice_turns', sa.Integer(), nullable=False),
    sa.Column('fallback_turns', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['console_conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'day')
    )
    op.create_index('ix_console_conversation_days_day', 'console_conversation_days',
                    ['day', 'conversation_id', 'voice_turns', 'turns', 'fallback_turns'], unique=False)

    op.create_table('console_conversation_intents',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('intent', sa.String(length=255), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['console_conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'intent', 'day')
    )

    op.create_table('console_intent_days',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('intent', sa.String(length=255), nullable=False),
    sa.Column('turns', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'intent')
    )

    op.create_table('console_conversation_offers',
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('offer_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('shown_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['console_conversations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('conversation_id', 'offer_id')
    )
    op.create_index('ix_console_conversation_offers_shown', 'console_conversation_offers', ['shown_at', 'offer_id'], unique=False)
    op.create_index('ix_console_conversation_offers_offer', 'console_conversation_offers', ['offer_id'], unique=False)

    state = op.create_table('console_index_state',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('last_event_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.bulk_insert(state, [{'name': 'events', 'last_event_id': 0, 'updated_at': None}])

    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        op.execute(f"CREATE VIRTUAL TABLE {FTS} USING fts5(search_text, content='console_conversations', "
                   "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
        op.execute(f"CREATE TRIGGER {FTS}_insert AFTER INSERT ON console_conversations BEGIN "
                   f"INSERT INTO {FTS}(rowid, search_text) VALUES (new.id, new.search_text); END")
        op.execute(f"CREATE TRIGGER {FTS}_delete AFTER DELETE ON console_conversations BEGIN "
                   f"INSERT INTO {FTS}({FTS}, rowid, search_text) VALUES ('delete', old.id, old.search_text); END")
        op.execute(f"CREATE TRIGGER {FTS}_update AFTER UPDATE OF search_text ON console_conversations BEGIN "
                   f"INSERT INTO {FTS}({FTS}, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
                   f"INSERT INTO {FTS}(rowid, search_text) VALUES (new.id, new.search_text); END")
    elif dialect == 'postgresql':
        op.execute("CREATE INDEX ix_console_conversations_search ON console_conversations "
                   "USING gin (to_tsvector('simple'::regconfig, search_text))")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for suffix in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS {FTS}_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {FTS}")
    elif dialect == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_console_conversations_search")
    op.drop_table('console_index_state')
    op.drop_index('ix_console_conversation_offers_offer', table_name='console_conversation_offers')
    op.drop_index('ix_console_conversation_offers_shown', table_name='console_conversation_offers')
    op.drop_table('console_conversation_offers')
    op.drop_table('console_intent_days')
    op.drop_table('console_conversation_intents')
    op.drop_index('ix_console_conversation_days_day', table_name='console_conversation_days')
    op.drop_table('console_conversation_days')
    for name in ('ix_console_conversations_confidence', 'ix_console_conversations_customer',
                 'ix_console_conversations_started', *PARTIAL, 'ix_console_conversations_recent'):
        op.drop_index(name, table_name='console_conversations')
    op.drop_table('console_conversations')
