"""The offer policy: which customer gets what discount on the recommended product, and why.

Read from YAML (``policy.yml`` next to this file, or ``SMARTMKT_OFFER_POLICY``). Decisions, in
this order:
  1. opted out of marketing                              -> no offer, ever
  2. the per-customer daily cap reached                  -> no offer
  3. the product is not eligible (price, category)       -> no offer
  4. no purchases yet                       "welcome"    -> welcome discount
  5. no purchase-model score yet            "nudge"      -> nudge discount (the model has not
                                                            scored this customer)
  6. P(purchase) >= sure_from                             -> no offer: they buy anyway
  7. P(purchase) >= undecided_from          "nudge"      -> nudge discount
  8. unlikely to buy, P(alive) < lapsing_below and past spend >= win_back_min_spend
                                            "win_back"   -> win-back discount
  9. otherwise                                            -> no offer
  and last: an offer whose discount would take the day's offered discounts over daily_budget
  is not made.
P(purchase) and P(alive) are the purchase model's (smartmkt.predict) over the scoring horizon;
the product and its recommendation score come from the recommender.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_POLICY = Path(__file__).resolve().parent / "policy.yml"


class PolicyError(ValueError):
    """A policy file that cannot be used."""


@dataclass(frozen=True)
class OfferPolicy:
    welcome_pct: int = 15
    nudge_pct: int = 10
    win_back_pct: int = 20
    sure_from: float = 0.8
    undecided_from: float = 0.1
    lapsing_below: float = 0.5
    win_back_min_spend_cents: int = 100_000
    min_price_cents: int = 0
    exclude_categories: tuple[str, ...] = ()
    daily_budget_cents: int = 50_000
    max_offers_per_day: int = 3
    expiry_days: int = 7

    @classmethod
    def load(cls, path: Path | None = None) -> OfferPolicy:
        source = path or DEFAULT_POLICY
        try:
            document = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(f"{source}: cannot read the offer policy: {exc}") from exc
        return cls.from_mapping(document, str(source))

    @classmethod
    def from_mapping(cls, document: dict[str, Any], source: str = "policy") -> OfferPolicy:
        sections = {"discounts", "thresholds", "eligible", "limits"}
        if not isinstance(document, dict) or set(document) - sections:
            raise PolicyError(f"{source}: top-level keys must be among {sorted(sections)}")
        d, t = document.get("discounts") or {}, document.get("thresholds") or {}
        e, lim = document.get("eligible") or {}, document.get("limits") or {}
        try:
            policy = cls(
                welcome_pct=int(d.get("welcome", 15)),
                nudge_pct=int(d.get("nudge", 10)),
                win_back_pct=int(d.get("win_back", 20)),
                sure_from=float(t.get("sure_from", 0.8)),
                undecided_from=float(t.get("undecided_from", 0.1)),
                lapsing_below=float(t.get("lapsing_below", 0.5)),
                win_back_min_spend_cents=round(float(t.get("win_back_min_spend", 1000)) * 100),
                min_price_cents=round(float(e.get("min_price", 0)) * 100),
                exclude_categories=tuple(str(c) for c in e.get("exclude_categories") or ()),
                daily_budget_cents=round(float(lim.get("daily_budget", 500)) * 100),
                max_offers_per_day=int(lim.get("max_offers_per_customer_per_day", 3)),
                expiry_days=int(lim.get("expiry_days", 7)),
            )
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"{source}: {exc}") from exc
        for name in ("welcome_pct", "nudge_pct", "win_back_pct"):
            if not 0 < getattr(policy, name) < 100:
                raise PolicyError(f"{source}: discounts must be between 1 and 99 percent")
        if not 0 <= policy.undecided_from <= policy.sure_from <= 1:
            raise PolicyError(f"{source}: need 0 <= undecided_from <= sure_from <= 1")
        return policy


@dataclass(frozen=True)
class CustomerState:
    """What the policy knows about the customer at the moment of the offer."""

    purchases: int
    spend_cents: int
    p_purchase: float | None = None  # None: the purchase model has not scored them
    p_alive: float | None = None
    expected_purchases: float | None = None
    opted_out: bool = False
    offers_last_day: int = 0


@dataclass(frozen=True)
class ProductOffered:
    price_cents: int
    genres: tuple[str, ...] = ()
    recommendation_score: float = 0.0


@dataclass(frozen=True)
class OfferDecision:
    percent_off: int
    rule: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)

    def discount_cents(self, price_cents: int) -> int:
        return discount_cents(price_cents, self.percent_off)


def discount_cents(price_cents: int, percent_off: int) -> int:
    """What a discount costs the shop on one item, in cents."""
    return round(price_cents * percent_off / 100)


def decide_offer(
    customer: CustomerState, product: ProductOffered, budget_used_cents: int, policy: OfferPolicy
) -> OfferDecision | None:
    """The offer for this customer on the recommended product, or None (see the module doc)."""
    if customer.opted_out or customer.offers_last_day >= policy.max_offers_per_day:
        return None
    if product.price_cents < policy.min_price_cents or set(product.genres) & set(policy.exclude_categories):
        return None
    decision = _rule(customer, policy)
    if decision is None:
        return None
    if budget_used_cents + decision.discount_cents(product.price_cents) > policy.daily_budget_cents:
        return None
    scores = {
        "purchases": float(customer.purchases),
        "spend": customer.spend_cents / 100,
        "recommendation_score": round(product.recommendation_score, 4),
    }
    for name in ("p_purchase", "p_alive", "expected_purchases"):
        value = getattr(customer, name)
        if value is not None:
            scores[name] = round(float(value), 4)
    return OfferDecision(decision.percent_off, decision.rule, decision.reason, scores)


def _rule(c: CustomerState, p: OfferPolicy) -> OfferDecision | None:
    if c.purchases == 0:
        return OfferDecision(p.welcome_pct, "welcome", "first purchase welcome discount")
    if c.p_purchase is None or c.p_alive is None:
        return OfferDecision(p.nudge_pct, "nudge", "nudge on a title picked for you (no purchase score yet)")
    if c.p_purchase >= p.sure_from:
        return None
    if c.p_purchase >= p.undecided_from:
        reason = f"undecided (P(purchase) {c.p_purchase:.2f}): a nudge on a title picked for you"
        return OfferDecision(p.nudge_pct, "nudge", reason)
    if c.p_alive < p.lapsing_below and c.spend_cents >= p.win_back_min_spend_cents:
        reason = (
            f"valued customer (spent {c.spend_cents / 100:.2f}) who may be lapsing (P(alive) {c.p_alive:.2f})"
        )
        return OfferDecision(p.win_back_pct, "win_back", reason)
    return None
