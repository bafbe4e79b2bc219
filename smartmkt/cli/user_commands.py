"""``smartmkt user``: the marketer console's accounts."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console
from smartmkt.cli.shared import fail, migrated_store

user_app = typer.Typer(help="Marketer console accounts.", no_args_is_help=True)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The login e-mail.")],
    role: Annotated[str, typer.Option("--role", help="marketer or admin.")] = "marketer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (scripts).")
    ] = False,
) -> None:
    """Create a console user; the password is asked for (twice) unless --password-stdin."""
    from smartmkt.console.users import UserError, create_user

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    try:
        user = create_user(migrated_store(), email, password, role)
    except UserError as exc:
        fail(str(exc))
    console.print(f"created {user.role} {user.email} (id {user.id})")


@user_app.command("list")
def user_list() -> None:
    """Console users and their roles (never their password hashes)."""
    from smartmkt.console.users import list_users

    table = Table("id", "email", "role", "created")
    for user in list_users(migrated_store()):
        table.add_row(str(user.id), user.email, user.role, f"{user.created_at:%Y-%m-%d %H:%M}")
    console.print(table)
