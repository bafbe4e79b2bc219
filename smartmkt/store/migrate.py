"""Alembic driven from Python, so ``smartmkt db upgrade`` needs no alembic.ini on disk."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# In the store's database but not smartmkt's models: Rasa's tracker store table, and the console's
# text-search objects that only exist on one engine (migration 0007).
UNMANAGED = frozenset({"events", "ix_events_sender_id", "ix_console_conversations_search"})
UNMANAGED_PREFIX = "console_conversation_search"  # the FTS5 table and its shadow tables


def include_name(name: str | None, type_: str, _parent_names: object) -> bool:
    """Alembic's filter: compare and autogenerate only what smartmkt's models declare."""
    if type_ in ("table", "index") and name:
        return name not in UNMANAGED and not name.startswith(UNMANAGED_PREFIX)
    return True


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (default: the newest schema)."""
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    from smartmkt.store.db import make_engine

    engine = make_engine(url)
    with engine.connect() as connection:
        rev = MigrationContext.configure(connection).get_current_revision()
    engine.dispose()
    return rev
