"""``smartmkt webhook``: the shop's endpoints for smartmkt's events, and the delivery log."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console
from smartmkt.cli.shared import fail, migrated_store

webhook_app = typer.Typer(
    help="Webhooks to the shop's systems: endpoints and deliveries.", no_args_is_help=True
)


@webhook_app.command("add")
def webhook_add(
    url: Annotated[str, typer.Argument(help="The shop's https URL that receives the events.")],
    events: Annotated[
        str, typer.Option("--events", help="Comma-separated: offer.created, offer.redeemed.")
    ] = "offer.created,offer.redeemed",
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoint as JSON (scripts).")] = False,
) -> None:
    """Add an endpoint; its signing secret is printed once (it signs X-Smartmkt-Signature)."""
    from smartmkt.store.outbox import EndpointError, add_endpoint

    wanted = [e.strip() for e in events.split(",") if e.strip()]
    try:
        endpoint_id, secret = add_endpoint(migrated_store(), url, wanted)
    except EndpointError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps({"id": endpoint_id, "url": url, "events": sorted(set(wanted)), "secret": secret}))
        return
    console.print(f"endpoint {endpoint_id}: {url} ({', '.join(sorted(set(wanted)))})")
    console.print("its signing secret, shown this once:")
    print(secret)


@webhook_app.command("list")
def webhook_list() -> None:
    """Endpoints with their deliveries: delivered, waiting (to be tried again) and given up."""
    from smartmkt.store.outbox import endpoint_summaries

    table = Table("id", "url", "events", "delivered", "waiting", "given up", "disabled")
    for e in endpoint_summaries(migrated_store()):
        table.add_row(
            str(e.id),
            e.url,
            " ".join(e.events),
            str(e.delivered),
            str(e.waiting),
            str(e.given_up),
            "yes" if e.disabled else "-",
        )
    console.print(table)


@webhook_app.command("disable")
def webhook_disable(endpoint_id: Annotated[int, typer.Argument(help="The endpoint's id.")]) -> None:
    """Stop sending new events to an endpoint (deliveries already queued still go)."""
    from smartmkt.store.outbox import disable_endpoint

    if not disable_endpoint(migrated_store(), endpoint_id):
        fail(f"no live endpoint {endpoint_id}")
    console.print(f"endpoint {endpoint_id} disabled")


@webhook_app.command("deliveries")
def webhook_deliveries(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest deliveries: event, endpoint, attempts, last answer, delivered or next try."""
    from smartmkt.store.outbox import recent_deliveries

    rows = recent_deliveries(migrated_store(), limit)
    if as_json:
        print(json.dumps([r.as_dict() for r in rows], indent=2))
        return
    table = Table("id", "event", "endpoint", "created", "attempts", "last", "delivered / next try")
    for r in rows:
        outcome = (
            f"{r.delivered_at:%Y-%m-%d %H:%M:%S}"
            if r.delivered_at
            else (f"next {r.next_attempt_at:%H:%M:%S}" if r.next_attempt_at else "given up")
        )
        last = str(r.last_status or "") + (f" {r.last_error}" if r.last_error else "")
        table.add_row(
            str(r.id),
            r.event,
            str(r.endpoint_id),
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            str(r.attempts),
            last or "-",
            outcome,
        )
    console.print(table)
