"""``smartmkt db``: the SQL store's schema."""

from __future__ import annotations

import typer

from smartmkt.cli.progress import console
from smartmkt.settings import get_settings

db_app = typer.Typer(help="The SQL store.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the store to the newest schema (Alembic)."""
    from smartmkt.store.migrate import current_revision, upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    console.print(f"store at schema revision [bold]{current_revision(url)}[/bold]")
