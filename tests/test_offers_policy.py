from datetime import UTC, datetime, timedelta

from smartmkt.offers.policy import OfferRules, decide_offer

CLOCK = datetime(1998, 4, 22, tzinfo=UTC)


def _decide(**kw):  # type: ignore[no-untyped-def]
    args = {
        "purchases": 10,
        "last_order_at": CLOCK - timedelta(days=5),
        "store_clock": CLOCK,
        "offers_last_day": 0,
        "opted_out": False,
        "recommendation_score": 3.0,
    }
    return decide_offer(**{**args, **kw})


def test_opted_out_and_capped_customers_get_nothing() -> None:
    assert _decide(opted_out=True) is None
    assert _decide(offers_last_day=OfferRules().max_offers_per_day) is None


def test_segments() -> None:
    assert _decide(purchases=0, last_order_at=None).rule == "welcome"
    lapsed = _decide(purchases=50, last_order_at=CLOCK - timedelta(days=120))
    assert (lapsed.rule, lapsed.percent_off) == ("win_back", 20)
    assert lapsed.scores["days_since_last_order"] == 120.0
    assert _decide(purchases=150).rule == "loyal"
    assert _decide(purchases=10).rule == "nudge"
    # a lapsed customer with little past value gets the ordinary nudge, not the win-back
    assert _decide(purchases=3, last_order_at=CLOCK - timedelta(days=120)).rule == "nudge"
