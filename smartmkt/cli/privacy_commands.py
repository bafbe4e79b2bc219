"""``smartmkt customer erase`` and ``smartmkt retention run`` (registered on the main app by
smartmkt.cli.main); the rules are in smartmkt.privacy."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console
from smartmkt.cli.shared import JsonFlag, engines
from smartmkt.settings import get_settings

customer_app = typer.Typer(help="A customer's personal data.", no_args_is_help=True)
retention_app = typer.Typer(help="How long conversations are kept.", no_args_is_help=True)
privacy_app = typer.Typer(help="Personal data in stored conversations.", no_args_is_help=True)
DryRun = Annotated[bool, typer.Option("--dry-run", help="Count what would change; change nothing.")]


def _counts_table(counts: dict[str, int]) -> Table:
    table = Table("table", "rows")
    for name, n in counts.items():
        table.add_row(name.replace("_", " "), f"{n:,}")
    return table


@customer_app.command("erase")
def customer_erase(
    customer_id: Annotated[str, typer.Argument(help="The customer's id (the shop's reference).")],
    sender: Annotated[
        list[str] | None,
        typer.Option("--sender", help="Another conversation (Rasa sender id) of the customer; repeatable."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="Who asked, for the audit (default: operator:<login>).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Erase a customer: profile, offers, consents, scores, conversations (events, console index,
    NLU reviews); their orders stay for accounting without the link. Asks first unless --yes."""
    from smartmkt.privacy.erasure import erase_customer, operator, preview

    store, tracker = engines()
    plan = preview(store, tracker, customer_id, sender or ())
    if not plan.found:
        if as_json:
            print(json.dumps({"customer": customer_id, "erased": False, "counts": plan.counts}))
        else:
            console.print(f"nothing is stored for customer {customer_id!r}: nothing erased")
        return
    if not as_json:
        console.print(f"customer {customer_id!r}, conversations {', '.join(plan.senders)}:")
        console.print(_counts_table(plan.counts))
    if not yes:
        typer.confirm(
            f"Erase customer {customer_id!r} as above? This cannot be undone", default=False, abort=True
        )
    done = erase_customer(store, tracker, customer_id, by or operator(), plan.senders)
    if as_json:
        print(json.dumps({"customer": customer_id, "erased": True, "counts": done.counts}))
    else:
        console.print(
            f"erased customer {customer_id!r}: {sum(done.counts.values()):,} rows "
            "(an audit record without personal data is in erasure_audit)"
        )


@retention_app.command("run")
def retention_run(
    days: Annotated[
        int | None,
        typer.Option("--days", min=1, help="Keep this many days (default: SMARTMKT_RETENTION_DAYS, 365)."),
    ] = None,
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Purge conversations older than the retention period: their events, console index rows
    and NLU reviews (smartmkt.privacy.retention says exactly what)."""
    from smartmkt.privacy.retention import run_retention

    store, tracker = engines()
    run = run_retention(store, tracker, days or get_settings().retention_days, dry_run=dry_run)
    if as_json:
        print(json.dumps(run.as_dict()))
    else:
        console.print(run.summary(), soft_wrap=True)


@privacy_app.command("mask-stored")
def privacy_mask_stored(
    dry_run: DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Mask the personal data in conversations Rasa stored before masking was on (SMARTMKT_REDACT),
    then rebuild the console's index."""
    from dataclasses import asdict

    from smartmkt.privacy.redact import redactor
    from smartmkt.privacy.stored import mask_stored

    settings = get_settings()
    store, tracker = engines()
    run = mask_stored(store, tracker, redactor(settings.redact, settings.redact_phone_regions), dry_run)
    if as_json:
        print(json.dumps(asdict(run)))
        return
    verb = "would mask" if dry_run else "masked"
    console.print(
        f"{verb} {run.masked:,} of {run.events:,} events in {run.conversations:,} conversations"
        + ("; console index rebuilt" if run.reindexed else ""),
        soft_wrap=True,
    )
