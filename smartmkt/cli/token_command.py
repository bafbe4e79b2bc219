"""``smartmkt token``: a customer token and session as the shop's site would issue them
(registered on the root app by smartmkt.cli.main)."""

from __future__ import annotations

import json
import shlex
from typing import Annotated

import typer

from smartmkt.settings import get_settings


def token_cmd(
    customer: Annotated[str, typer.Argument(help="The customer reference (the shop's customer id).")],
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30)] = 1.0,
    shell: Annotated[bool, typer.Option("--shell", help="SESSION=... TOKEN=... for eval.")] = False,
) -> None:
    """A signed customer token and a chat session id bound to it, as the shop's site would issue."""
    from smartmkt.security.identity import Refused, issue_token, new_session_id
    from smartmkt.security.secrets import local_secret

    secret = local_secret(get_settings(), "customer_token_secret")
    try:
        token = issue_token(secret, customer, hours * 3600)
    except Refused as exc:
        raise typer.BadParameter(str(exc), param_hint="CUSTOMER") from exc
    session = new_session_id(secret, customer)
    if shell:
        print(f"SESSION={shlex.quote(session)}\nTOKEN={shlex.quote(token)}")
    else:
        print(json.dumps({"customer_ref": customer, "session_id": session, "token": token}))
