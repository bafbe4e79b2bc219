"""The console dashboard: conversation, intent, fallback and offer figures for a date range, and
the served models' held-out figures.

Days are UTC days on which the customer wrote or spoke. Offers count when shown in a conversation
in the range; their outcome is their status now in ``offers``. Discount spent is what the
accepted offers took off the catalog price (smartmkt.offers.policy.discount_cents).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, case, distinct, func, select

from smartmkt.console.conversations import FilterError
from smartmkt.console.index import DAYS, INTENT_DAYS, OFFERS
from smartmkt.offers.policy import discount_cents
from smartmkt.store import model_registry
from smartmkt.store.clock import utcnow
from smartmkt.store.models import Offer, Product

DEFAULT_DAYS = 30
MAX_DAYS = 366
TOP_INTENTS = 10
MODEL_KINDS = ("nlu", "recommender", "purchase")


def date_range(start: date | None, end: date | None, today: date | None = None) -> tuple[date, date]:
    """The range asked for; by default the last 30 days up to today (UTC)."""
    end = end or (start + timedelta(days=DEFAULT_DAYS - 1) if start else today or utcnow().date())
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise FilterError("from is after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise FilterError(f"the dashboard covers at most {MAX_DAYS} days")
    return start, end


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def model_figures(models_dir: Path) -> dict[str, dict[str, float]]:
    """Each served model's held-out metrics from its metadata.json (empty when it has none)."""
    figures: dict[str, dict[str, float]] = {}
    for kind in MODEL_KINDS:
        entry = model_registry.served(models_dir, kind)
        if entry is None:
            continue
        meta = model_registry.read_metadata(models_dir / entry["path"])
        metrics = meta.metrics if meta else {}
        figures[kind] = {
            k: v for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
    return figures


def model_warnings(models_dir: Path, min_positives: int) -> dict[str, str]:
    """A warning per served model whose held-out figures rest on fewer than ``min_positives``
    positives (recorded as ``heldout_positives`` when it was gated), so a marketer does not read
    noise as a measurement."""
    warnings: dict[str, str] = {}
    for kind, metrics in model_figures(models_dir).items():
        positives = metrics.get("heldout_positives")
        if positives is not None and positives < min_positives:
            warnings[kind] = (
                f"only {int(positives)} held-out positives (fewer than {min_positives}): "
                "these figures are noise, not a measurement"
            )
    return warnings


def dashboard(
    engine: Engine, start: date, end: date, models_dir: Path, min_positives: int = 30
) -> dict[str, Any]:
    in_range = DAYS.c.day.between(start, end)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    voiced = case((DAYS.c.voice_turns > 0, DAYS.c.conversation_id))
    with engine.connect() as conn:
        per_day = {
            day: (int(n), int(voice or 0))
            for day, n, voice in conn.execute(
                select(DAYS.c.day, func.count(), func.sum(case((DAYS.c.voice_turns > 0, 1), else_=0)))
                .where(in_range)
                .group_by(DAYS.c.day)
            )
        }
        conversations, voice_conversations, turns, fallback_turns = conn.execute(
            select(
                func.count(distinct(DAYS.c.conversation_id)),
                func.count(distinct(voiced)),
                func.coalesce(func.sum(DAYS.c.turns), 0),
                func.coalesce(func.sum(DAYS.c.fallback_turns), 0),
            ).where(in_range)
        ).one()
        turns_of = func.sum(INTENT_DAYS.c.turns)
        top_intents = conn.execute(
            select(INTENT_DAYS.c.intent, turns_of)
            .where(INTENT_DAYS.c.day.between(start, end))
            .group_by(INTENT_DAYS.c.intent)
            .having(turns_of > 0)
            .order_by(turns_of.desc(), INTENT_DAYS.c.intent)
            .limit(TOP_INTENTS)
        ).all()
        shown = (
            select(OFFERS.c.offer_id)
            .where(OFFERS.c.shown_at >= since, OFFERS.c.shown_at < until)
            .distinct()
            .subquery()
        )
        made = (
            conn.scalar(
                select(func.count(distinct(OFFERS.c.offer_id))).where(
                    OFFERS.c.shown_at >= since, OFFERS.c.shown_at < until
                )
            )
            or 0
        )
        outcomes = conn.execute(
            select(Offer.status, Offer.percent_off, Product.price_cents)
            .join(shown, shown.c.offer_id == Offer.id)
            .join(Product, Product.id == Offer.product_id)
            .where(Offer.status.in_(("accepted", "declined")))
        ).all()
    accepted = [o for o in outcomes if o.status == "accepted"]
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "per_day": [
            {
                "day": day.isoformat(),
                "conversations": per_day.get(day, (0, 0))[0],
                "voice_conversations": per_day.get(day, (0, 0))[1],
            }
            for day in days
        ],
        "conversations": int(conversations),
        "voice_share": _ratio(voice_conversations, conversations),
        "top_intents": [{"intent": intent, "count": int(n)} for intent, n in top_intents],
        "turns": int(turns),
        "fallback_rate": _ratio(fallback_turns, turns),
        "offers": {
            "made": int(made),
            "accepted": len(accepted),
            "declined": sum(1 for o in outcomes if o.status == "declined"),
            "conversion": _ratio(len(accepted), made),
            "discount_spent_cents": sum(discount_cents(o.price_cents, o.percent_off) for o in accepted),
        },
        "models": model_figures(models_dir),
        "model_warnings": model_warnings(models_dir, min_positives),
    }
