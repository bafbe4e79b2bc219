"""Rasa's tracker store lives in the store's own database unless configured otherwise, and Rasa
(SQLAlchemy 1.4, psycopg2) and smartmkt (SQLAlchemy 2, psycopg 3) open the same database."""

from __future__ import annotations

from pathlib import Path

from smartmkt.runtime.processes import service_env
from smartmkt.settings import Settings


def test_the_tracker_store_defaults_to_the_store_database(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, database_url="", tracker_url="", tracker_db="")
    assert (
        settings.resolved_tracker_url == settings.resolved_database_url == f"sqlite:///{tmp_path}/smartmkt.db"
    )
    # Rasa waits for a busy writer rather than failing over to an in-memory tracker store
    assert settings.rasa_tracker_url == f"sqlite:///{tmp_path}/smartmkt.db?timeout=30"
    env = service_env(settings)
    assert env["SMARTMKT_TRACKER_URL"] == settings.rasa_tracker_url


def test_postgresql_gets_each_side_its_driver() -> None:
    settings = Settings(database_url="postgresql+psycopg://u:p@db:5432/shop", tracker_url="", tracker_db="")
    assert settings.resolved_tracker_url == "postgresql+psycopg://u:p@db:5432/shop"
    assert settings.rasa_tracker_url == "postgresql://u:p@db:5432/shop"  # psycopg2 in the bot env
    explicit = Settings(tracker_url="postgresql://u:p@other/conv")
    assert explicit.resolved_tracker_url == "postgresql+psycopg://u:p@other/conv"
    assert explicit.rasa_tracker_url == "postgresql://u:p@other/conv"


def test_a_separate_tracker_database_can_still_be_named(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, tracker_db=str(tmp_path / "conversations.db"), tracker_url="")
    assert settings.resolved_tracker_url == f"sqlite:///{tmp_path}/conversations.db"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path}/smartmkt.db"
