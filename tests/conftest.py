"""Shared fixtures. Tests use the real components: a real SQLite store loaded with the real demo
data, the trained models from models/ (``make test`` trains them first), real FAISS, and for the
end-to-end tests the real Rasa server, action server and app on free ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smartmkt import registry
from smartmkt.settings import Settings, get_settings
from smartmkt.store.db import make_engine, session_scope

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory: pytest.TempPathFactory, base_settings: Settings) -> Path:
    """A migrated store with the demo data, built once per test session."""
    from smartmkt.data.demo import load_demo
    from smartmkt.store.migrate import upgrade

    path = tmp_path_factory.mktemp("demo") / "smartmkt.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as session:
        load_demo(session, base_settings.var_dir / "cache" / "wheels")
    engine.dispose()
    return path


@pytest.fixture
def demo_db(tmp_path: Path, demo_db_template: Path) -> Path:
    """A private copy of the demo store for one test (tests may write offers and orders)."""
    target = tmp_path / "smartmkt.db"
    shutil.copy(demo_db_template, target)
    return target


@pytest.fixture
def demo_engine(demo_db: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{demo_db}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def served_recommender(base_settings: Settings):  # type: ignore[no-untyped-def]
    from smartmkt.recommend.recommender import Recommender

    return Recommender.load(registry.served_path(base_settings.models_dir, "recommender"))


@pytest.fixture(scope="session")
def served_parser(base_settings: Settings):  # type: ignore[no-untyped-def]
    from smartmkt.nlu.parser import NLUParser

    return NLUParser(
        registry.served_path(base_settings.models_dir, "nlu"),
        base_settings.nlu_fallback_threshold,
        base_settings.nlu_max_chars,
    )
