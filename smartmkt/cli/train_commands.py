"""``smartmkt train``: train each model, skipped when its inputs are unchanged and promoted only
when its gate says so (the rules are in smartmkt.lifecycle.training)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from smartmkt.cli.progress import console, progress_bars
from smartmkt.cli.shared import fail
from smartmkt.settings import get_settings

if TYPE_CHECKING:
    from smartmkt.lifecycle.training import TrainResult

train_app = typer.Typer(help="Train models (skips what is current unless --force).", no_args_is_help=True)
ForceFlag = Annotated[bool, typer.Option("--force", help="Retrain even if inputs are unchanged.")]
SeedFlag = Annotated[
    int | None, typer.Option("--seed", help="Random seed; the same seed and data give the same model.")
]


def _report(result: TrainResult) -> None:
    """One line per model: trained or current, promoted or refused and why, held-out figures."""
    if result.skipped:
        console.print(f"{result.kind}: up to date ({result.fingerprint}) -> {result.path}")
        return
    promotion = result.promotion
    verdict = "promoted" if result.promoted else "[yellow]not promoted[/]"
    why = f" ({promotion.reason})" if promotion else ""
    how = "reused (trained before on the same inputs)" if result.reused else "trained"
    console.print(f"{result.kind}: {how} ({result.fingerprint}), {verdict}{why} -> {result.path}")
    shown = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    if shown:
        console.print("  held-out: " + ", ".join(f"{k} {v}" for k, v in shown.items()))


def train_model(kind: str, force: bool, seed: int | None) -> TrainResult:
    """Train one data or NLU model with progress bars and report it (also `smartmkt run`'s first
    training); a held-out set without positives fails the command and the served model stays."""
    from smartmkt.lifecycle.heldout import NoPositives
    from smartmkt.lifecycle.kinds import KINDS
    from smartmkt.lifecycle.training import train
    from smartmkt.store.db import get_engine

    try:
        with progress_bars() as update:
            result = train(KINDS[kind], get_settings(), get_engine(), force, update, seed)
    except NoPositives as exc:
        fail(f"{kind}: {exc}; the served model stays")
    _report(result)
    return result


@train_app.command("nlu")
def train_nlu_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """Fine-tune MiniLM on bot/data/nlu (joint intents + entities); gated on bot/tests/nlu_test.yml."""
    train_model("nlu", force, seed)


@train_app.command("recommender")
def train_recommender_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """Text + collaborative item vectors and the FAISS index; gated on each customer's latest 20%."""
    train_model("recommender", force, seed)


@train_app.command("purchase")
def train_purchase_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """The purchase model (GRU + buy-till-you-die layer), gated on the latest H days; rescores
    every customer with the served model."""
    train_model("purchase", force, seed)


@train_app.command("core")
def train_core_cmd(force: ForceFlag = False) -> None:
    """Rasa's dialogue model (rules, stories, forms), in the bot environment."""
    from smartmkt.lifecycle.kinds import RASA_CORE
    from smartmkt.lifecycle.training import train

    with progress_bars() as update:  # Rasa's dialogue model needs no store: no engine
        _report(train(RASA_CORE, get_settings(), None, force, update))


@train_app.command("all")
def train_all_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """NLU, recommender, purchase model and Rasa core; each skipped when its inputs are unchanged,
    each promoted only when better than the served one on held-out data beyond noise."""
    train_nlu_cmd(force, seed)
    train_recommender_cmd(force, seed)
    train_purchase_cmd(force, seed)
    train_core_cmd(force)
