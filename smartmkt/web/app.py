"""The FastAPI application factory: ``uvicorn --factory smartmkt.web.app:create_app``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from smartmkt.notify.webhooks import WebhookSender
from smartmkt.security.http import Hardening, WidgetCors
from smartmkt.settings import Settings, get_settings
from smartmkt.web.routers import (
    api_docs,
    chat_identity,
    console_auth,
    console_conversations,
    console_reviews,
    console_shop,
    demo_shop,
    health,
    nlu,
    pages,
    shop_api,
    shop_offers,
    shop_webhooks,
    voice,
    widget,
)
from smartmkt.web.state import AppState

log = logging.getLogger(__name__)


def _webhook_sender(state: AppState) -> WebhookSender | None:
    """This process's sender of the outbox's webhooks (each app replica runs one; their claims
    keep them apart), unless SMARTMKT_WEBHOOK_POLL_S is 0."""
    if not state.settings.webhook_poll_s:
        return None
    sender = WebhookSender(state.store, state.settings.webhook_poll_s)
    sender.start()
    return sender


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import torch

        torch.set_num_threads(settings.inference_threads)
        state = app.state.smartmkt
        if settings.warm_up:
            await asyncio.to_thread(state.warm_up)  # before uvicorn serves the first request
            for name, error in state.warm_errors.items():
                log.error("model not ready: %s: %s", name, error)
            print(f"models loaded and warmed (ms): {state.warm_ms}", flush=True)  # uvicorn logs warnings only
        sender = _webhook_sender(app.state.smartmkt)
        yield
        if sender is not None:
            sender.stop()

    app = FastAPI(title="smartmkt", version="0.1.0", lifespan=lifespan)
    app.state.smartmkt = AppState(settings)
    app.include_router(health.router)
    app.include_router(nlu.router)
    app.include_router(voice.router)
    app.include_router(chat_identity.router)  # customer tokens -> chat sessions (smartmkt.security)
    for console_api in (console_auth, console_conversations, console_reviews, console_shop):
        app.include_router(console_api.router)  # the marketer console's JSON API
    app.include_router(shop_api.router)  # the shop's catalog, customers and orders (API keys)
    app.include_router(shop_offers.router)  # its checkout's discount codes
    app.include_router(shop_webhooks.router)  # Shopify's and WooCommerce's signed webhooks
    app.include_router(api_docs.router)  # its reference: /api/docs, /api/openapi.json
    app.include_router(widget.router)  # the chat widget for the shop's own pages (GET /widget.js)
    app.include_router(demo_shop.router)  # a demo shop with the widget on it (GET /demo-shop)
    app.include_router(pages.router)  # the web chat (GET /) and the console pages

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        reasons = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"error": "invalid request", "reasons": reasons}, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = getattr(exc, "headers", None)  # WWW-Authenticate on a 401, Retry-After on a 429
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(FileNotFoundError)
    async def model_missing(_request: Request, exc: FileNotFoundError) -> JSONResponse:
        return JSONResponse({"error": "model not available", "reason": str(exc)}, status_code=503)

    # security headers, body size limits and a body timeout on every response (smartmkt.security.http)
    app.add_middleware(Hardening, settings=settings)
    app.add_middleware(WidgetCors, settings=settings)  # the widget's calls from the shop's pages
    return app
