"""Console accounts on the real store: argon2 hashes, roles, clear refusals, the CLI."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from smartmkt.console.users import UserError, authenticate, create_user, list_users
from smartmkt.store.db import session_scope
from smartmkt.store.models import ConsoleUser

PASSWORD = "correct horse battery"


def test_a_user_logs_in_with_the_right_password_only(demo_engine: Engine) -> None:
    user = create_user(demo_engine, " Ana@Shop.example ", PASSWORD, "admin")
    assert user.email == "ana@shop.example" and user.is_admin
    assert authenticate(demo_engine, "ANA@shop.example", PASSWORD) == user
    assert authenticate(demo_engine, "ana@shop.example", PASSWORD + "!") is None
    assert authenticate(demo_engine, "nobody@shop.example", PASSWORD) is None
    with session_scope(demo_engine) as s:
        stored = s.scalar(select(ConsoleUser.password_hash))
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored


def test_disabled_users_cannot_log_in(demo_engine: Engine) -> None:
    create_user(demo_engine, "bo@shop.example", PASSWORD)
    with session_scope(demo_engine) as s:
        s.scalars(select(ConsoleUser)).one().disabled = True
    assert authenticate(demo_engine, "bo@shop.example", PASSWORD) is None


@pytest.mark.parametrize(
    ("email", "password", "role", "message"),
    [
        ("not-an-email", PASSWORD, "marketer", "not an e-mail"),
        ("cy@shop.example", "short", "marketer", "at least 12"),
        ("cy@shop.example", PASSWORD, "owner", "unknown role"),
    ],
)
def test_bad_users_are_refused_clearly(
    demo_engine: Engine, email: str, password: str, role: str, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        create_user(demo_engine, email, password, role)
    assert list_users(demo_engine) == []


def test_an_email_is_one_account_whatever_its_case(demo_engine: Engine) -> None:
    create_user(demo_engine, "di@shop.example", PASSWORD)
    with pytest.raises(UserError, match="exists already"):
        create_user(demo_engine, "DI@shop.example", PASSWORD + "x")
    assert [u.email for u in list_users(demo_engine)] == ["di@shop.example"]


def test_user_create_command(demo_db, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.cli.main import app
    from smartmkt.settings import get_settings
    from smartmkt.store.db import get_engine

    monkeypatch.setenv("SMARTMKT_DATABASE_URL", f"sqlite:///{demo_db}")
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        runner = CliRunner()
        made = runner.invoke(
            app, ["user", "create", "ed@shop.example", "--role", "admin"], input=f"{PASSWORD}\n{PASSWORD}\n"
        )
        assert made.exit_code == 0 and "created admin ed@shop.example" in made.output, made.output
        piped = runner.invoke(
            app, ["user", "create", "fay@shop.example", "--password-stdin"], input=PASSWORD + "\n"
        )
        assert piped.exit_code == 0, piped.output
        again = runner.invoke(
            app, ["user", "create", "fay@shop.example", "--password-stdin"], input=PASSWORD + "\n"
        )
        assert again.exit_code != 0 and "exists already" in again.output and "Traceback" not in again.output
        listed = runner.invoke(app, ["user", "list"])
        assert (
            "ed@shop.example" in listed.output
            and "marketer" in listed.output
            and "argon2" not in listed.output
        )
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
