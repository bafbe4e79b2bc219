"""``smartmkt console reindex`` and ``smartmkt nlu export-reviewed`` (registered on the main app by
smartmkt.cli.main)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from smartmkt.cli.progress import console, progress_bars, status
from smartmkt.cli.shared import engines
from smartmkt.settings import get_settings

console_app = typer.Typer(help="The marketer console's conversation index.", no_args_is_help=True)
nlu_app = typer.Typer(help="NLU training data from the console's reviews.", no_args_is_help=True)


@console_app.command("reindex")
def console_reindex(
    catch_up: Annotated[
        bool, typer.Option("--catch-up", help="Only index the events not indexed yet (no rebuild).")
    ] = False,
) -> None:
    """Rebuild the conversation index from Rasa's events (the console also catches up by itself)."""
    from smartmkt.console import index

    store, tracker = engines()
    if not index.events_table_exists(tracker):
        console.print("no conversations yet: Rasa creates its events table when it first starts")
        return
    with progress_bars() as update:
        step = index.catch_up if catch_up else index.rebuild
        run = step(store, tracker, progress=lambda done, total: update("events", done, total))
    console.print(
        f"indexed {run.events:,} events of {run.conversations:,} conversation updates in {run.seconds:.1f} s "
        f"(up to event {run.last_event_id})"
    )


@nlu_app.command("export-reviewed")
def nlu_export_reviewed(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here (default: print the YAML on standard output).")
    ] = None,
) -> None:
    """The console's NLU reviews as Rasa NLU YAML (version "3.1") to add to bot/data/nlu/.

    Texts already in bot/data/nlu under the same intent are left out; under another intent they
    are left out and listed, since Rasa refuses a text with two intents.
    """
    from smartmkt.console.reviews import export, text_key
    from smartmkt.nlu.data import NLUDataError, load_nlu

    settings = get_settings()
    store, _tracker = engines()
    with status("reading the reviews and the training data ..."):
        try:
            trained = {text_key(ex.text): ex.intent for ex in load_nlu(settings.bot_dir / "data" / "nlu")}
        except NLUDataError as exc:
            console.print(f"[yellow]warning:[/yellow] training data not read ({exc}); nothing is left out")
            trained = {}
        earlier = _exported_keys(out) if out is not None else set()  # overwriting an earlier export
        result = export(store, {k: v for k, v in trained.items() if k not in earlier})
    for review, intent in result.conflicts:
        console.print(
            f"[yellow]left out[/yellow] {review.text!r} (reviewed as {review.intent}): "
            f"bot/data/nlu has it as {intent}; fix one of the two"
        )
    if result.already_trained:
        console.print(f"{len(result.already_trained)} reviewed message(s) already in bot/data/nlu, left out")
    if not result.examples:
        console.print("no reviewed messages to export" + (f"; {out} not written" if out else ""))
        return
    if out is None:
        sys.stdout.write(result.yaml)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.yaml, encoding="utf-8")
    where = f" to {out}" if out else ""
    console.print(f"exported {result.examples} reviewed example(s) of {result.intents} intent(s){where}")


def _exported_keys(path: Path) -> set[str]:
    """Texts in an earlier export at ``path`` (overwriting it must not count them as trained)."""
    from smartmkt.console.reviews import text_key
    from smartmkt.nlu.data import NLUDataError, load_nlu_file

    if not path.exists():
        return set()
    try:
        return {text_key(ex.text) for ex in load_nlu_file(path)}
    except NLUDataError:
        return set()
