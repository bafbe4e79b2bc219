"""Webhooks from the shop platforms: ``POST /api/v1/webhooks/shopify`` and ``/woocommerce``.

No API key: the platform signs each delivery (smartmkt.data.shop_webhooks). The order of checks:
404 when the platform's secret is not configured; 401 when the signature is missing or wrong
(nothing of the request is kept); 200 ``{"duplicate": true}`` for a body already processed (a
retry or a replay); 400 for a body that is not JSON; 422 for a payload its topic cannot read;
else its rows go through the import's rules (smartmkt.data.importer) and the answer says where
they went. WooCommerce's unsigned ping when a webhook is created (``webhook_id=N``) gets a 200.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool

from smartmkt.data.importer import Importer
from smartmkt.data.shop_webhooks import PLATFORMS, PayloadError, WebhookRows, delivery_key, rows_of, verify
from smartmkt.store.clock import utcnow
from smartmkt.store.db import dialect_insert, session_scope
from smartmkt.store.models import WebhookReceipt
from smartmkt.web.routers.shop_api_access import PREFIX, store

router = APIRouter(prefix=PREFIX, tags=["shop webhooks"])
WOO_PING = re.compile(rb"^webhook_id=\d+$")


@router.post("/webhooks/{platform}", summary="A shop platform's webhook (Shopify, WooCommerce)")
async def receive(platform: str, request: Request) -> JSONResponse:
    settings = request.app.state.smartmkt.settings
    if platform not in PLATFORMS:
        return JSONResponse(
            {"error": f"no webhooks for {platform!r}: shopify or woocommerce"}, status_code=404
        )
    secret = getattr(settings, f"{platform}_webhook_secret")
    if not secret:
        setting = f"SMARTMKT_{platform.upper()}_WEBHOOK_SECRET"
        return JSONResponse(
            {"error": f"{platform} webhooks are not configured: set {setting}"}, status_code=404
        )
    body = await request.body()
    signature_header, topic_header = PLATFORMS[platform]
    sent = request.headers.get(signature_header)
    if platform == "woocommerce" and sent is None and WOO_PING.match(body.strip()):
        return JSONResponse({"ping": True})  # sent once, unsigned, when the webhook is created
    if not verify(secret, body, sent):
        return JSONResponse({"error": f"missing or wrong {signature_header} signature"}, status_code=401)
    topic = request.headers.get(topic_header, "")
    try:
        payload = json.loads(body)
    except ValueError:
        return JSONResponse({"error": "the body is not JSON"}, status_code=400)
    return await run_in_threadpool(
        _process, store(request), settings.currency, platform, topic, payload, delivery_key(platform, body)
    )


def _process(
    engine: Engine, currency: str, platform: str, topic: str, payload: Any, key: str
) -> JSONResponse:
    with session_scope(engine) as session:
        seen = session.scalar(select(WebhookReceipt.result).where(WebhookReceipt.key == key))
    if seen is not None:
        return JSONResponse({"duplicate": True, "topic": topic, "result": seen})
    try:
        rows = rows_of(platform, topic, payload)
    except PayloadError as exc:
        return JSONResponse({"error": str(exc), "topic": topic}, status_code=422)
    result = _import(Importer(engine, currency=currency), platform, rows)
    counts = {
        kind: {k: v for k, v in r.items() if k != "rows"} if isinstance(r, dict) else r
        for kind, r in result.items()
    }
    with session_scope(engine) as session:  # after the rows: a failed import is not marked done
        # only counts are kept: a row's detail may name a customer
        receipt = {
            "key": key,
            "platform": platform,
            "topic": topic[:64],
            "received_at": utcnow(),
            "result": counts,
        }
        session.execute(dialect_insert(session, WebhookReceipt).values(**receipt).on_conflict_do_nothing())
    return JSONResponse({"duplicate": False, "topic": topic, "result": result})


def _import(importer: Importer, platform: str, rows: WebhookRows) -> dict[str, Any]:
    """Each kind's rows through the import (in the shop's currency, where a row names none),
    customers and products before the orders that name them; per kind, what was accepted and the
    rows that were not (with their rule)."""
    if rows.skipped:
        return {"skipped": rows.skipped}
    result: dict[str, Any] = {}
    for kind, kind_rows in rows.kinds():
        done = importer.import_rows(kind, kind_rows, source=f"webhook:{platform}", channel=platform)
        others = [vars(o) for o in done.rows if o.status != "accepted"]
        result[kind] = {"received": len(kind_rows), "accepted": len(kind_rows) - len(others), "rows": others}
    return result
