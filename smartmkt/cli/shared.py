"""What several command groups share, defined once so that every command says and does these
the same way: the --json flag, the one-line error exit and the stores, migrated first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from smartmkt.cli.progress import console
from smartmkt.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr and exit with ``code``: a refusal, not a traceback."""
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def migrated_store() -> Any:
    """The configured store, migrated to the newest schema first (a no-op when it is)."""
    from smartmkt.store.db import get_engine
    from smartmkt.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    return get_engine()


def engines() -> tuple[Engine, Engine]:
    """The store (migrated to the newest schema first) and the tracker store, for commands."""
    from smartmkt.store.db import get_engine, tracker_engine
    from smartmkt.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    store = get_engine(settings.resolved_database_url)
    return store, tracker_engine(store, settings)
