"""Alembic migrations build exactly the schema the SQLAlchemy models declare."""

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from smartmkt.store.db import make_engine
from smartmkt.store.migrate import alembic_config, current_revision, include_name, upgrade
from smartmkt.store.models import Base

HEAD = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def test_migrations_match_models(store_url: str) -> None:
    url = store_url  # migrated to head on SQLite and on PostgreSQL
    assert current_revision(url) == HEAD
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    upgrade(url)
    assert current_revision(url) == HEAD
