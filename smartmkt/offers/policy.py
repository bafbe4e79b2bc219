"""Offers v1: one documented rule table, no model yet (the purchase model comes later).

For the top recommended title, in this order:
  1. opted out of marketing                          -> no offer, ever
  2. 3 offers already shown in the last 24 h          -> no offer (frequency cap)
  3. an open offer exists on that title              -> show that same offer again
  4. no purchases yet                 "welcome"       -> 15% off
  5. last purchase > 60 days before the store's latest order, and >= 20 purchases
                                      "win_back"      -> 20% off
  6. >= 100 purchases                 "loyal"         -> 5% off
  7. otherwise                        "nudge"         -> 10% off
Offers expire after ``expiry_days`` (7). Recency is measured against the store's own latest
order, so a historical data set (MovieLens ends in 1998) still has meaningful recency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class OfferRules:
    welcome_pct: int = 15
    win_back_pct: int = 20
    loyal_pct: int = 5
    nudge_pct: int = 10
    lapsed_days: int = 60
    win_back_min_purchases: int = 20
    loyal_min_purchases: int = 100
    max_offers_per_day: int = 3
    expiry_days: int = 7


@dataclass(frozen=True)
class OfferDecision:
    percent_off: int
    rule: str
    reason: str
    scores: dict[str, float]


def decide_offer(
    purchases: int,
    last_order_at: datetime | None,
    store_clock: datetime | None,
    offers_last_day: int,
    opted_out: bool,
    recommendation_score: float,
    rules: OfferRules | None = None,
) -> OfferDecision | None:
    """The offer for a customer's top recommendation, or None when no offer is allowed."""
    r = rules or OfferRules()
    if opted_out or offers_last_day >= r.max_offers_per_day:
        return None
    days_since = None
    if last_order_at and store_clock:
        days_since = max(0.0, (store_clock - last_order_at).total_seconds() / 86400)
    scores = {"purchases": float(purchases), "recommendation_score": round(recommendation_score, 4)}
    if days_since is not None:
        scores["days_since_last_order"] = round(days_since, 1)
    if purchases == 0:
        return OfferDecision(r.welcome_pct, "welcome", "first purchase welcome discount", scores)
    if days_since is not None and days_since > r.lapsed_days and purchases >= r.win_back_min_purchases:
        return OfferDecision(
            r.win_back_pct, "win_back", f"valued customer, no purchase for {days_since:.0f} days", scores
        )
    if purchases >= r.loyal_min_purchases:
        return OfferDecision(r.loyal_pct, "loyal", f"thank-you for {purchases} purchases", scores)
    return OfferDecision(r.nudge_pct, "nudge", "nudge on a title picked for you", scores)
