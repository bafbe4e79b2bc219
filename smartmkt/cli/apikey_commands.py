"""``smartmkt apikey``: keys for the shop API (one per shop integration)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console
from smartmkt.cli.shared import fail, migrated_store
from smartmkt.security.api_keys import SCOPES

apikey_app = typer.Typer(help="Shop API keys: create, list, revoke.", no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help=f"What the key may do, comma-separated: {', '.join(SCOPES)}.",
        ),
    ],
    name: Annotated[
        str, typer.Option("--name", help="Which integration holds it (shown in lists).")
    ] = "shop",
    rate: Annotated[int, typer.Option("--rate", min=1, help="Requests per minute the key may make.")] = 600,
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON (scripts).")] = False,
) -> None:
    """Create a key and print it once: only its hash is stored, so it cannot be shown again."""
    from smartmkt.security.api_keys import ApiKeyError, create_key, parse_scopes

    try:
        new = create_key(migrated_store(), name, parse_scopes(scope), rate)
    except ApiKeyError as exc:
        fail(str(exc))
    if as_json:
        print(
            json.dumps(
                {
                    "id": new.id,
                    "prefix": new.prefix,
                    "key": new.key,
                    "name": new.name,
                    "scopes": list(new.scopes),
                }
            )
        )
        return
    console.print(f"created API key {new.prefix} ({new.name}; {', '.join(new.scopes)}; {rate} requests/min)")
    console.print("the key, shown this once (send it as 'Authorization: Bearer <key>'):")
    print(new.key)


@apikey_app.command("list")
def apikey_list() -> None:
    """Every key with its scopes and when it was last used (never the key itself)."""
    from smartmkt.security.api_keys import list_keys

    table = Table("id", "prefix", "name", "scopes", "per min", "created", "last used", "revoked")
    for key in list_keys(migrated_store()):
        table.add_row(
            str(key.id),
            key.prefix,
            key.name,
            " ".join(key.scopes),
            str(key.rate_per_minute),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "-",
        )
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(ref: Annotated[str, typer.Argument(help="The key's id or prefix.")]) -> None:
    """Revoke a key at once: its next request gets a 401."""
    from smartmkt.security.api_keys import ApiKeyError, revoke_key

    try:
        key = revoke_key(migrated_store(), ref)
    except ApiKeyError as exc:
        fail(str(exc))
    console.print(f"revoked API key {key.prefix} ({key.name})")
