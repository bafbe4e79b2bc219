"""The console's shop page data: what the shop's checkout redeemed, and the webhooks smartmkt
sent the shop's systems (endpoints, and each delivery with its attempts and last answer).

GET /console/api/shop?limit=50 -> {"redemptions": [...], "endpoints": [...], "deliveries": [...]}
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from smartmkt.store.offer_codes import recent_redemptions
from smartmkt.store.outbox import endpoint_summaries, recent_deliveries
from smartmkt.web.console_access import Backend, LoggedIn

router = APIRouter(prefix="/console/api", tags=["console"])


@router.get("/shop")
def shop(
    _session: LoggedIn, console: Backend, limit: int = Query(default=50, ge=1, le=500)
) -> dict[str, Any]:
    endpoints = [
        {
            "id": e.id,
            "url": e.url,
            "events": list(e.events),
            "disabled": e.disabled,
            "delivered": e.delivered,
            "waiting": e.waiting,
            "given_up": e.given_up,
        }
        for e in endpoint_summaries(console.store)
    ]
    return {
        "redemptions": [r.as_dict() for r in recent_redemptions(console.store, limit)],
        "endpoints": endpoints,
        "deliveries": [d.as_dict() for d in recent_deliveries(console.store, limit)],
    }
