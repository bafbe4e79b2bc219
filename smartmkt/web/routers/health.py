"""Liveness and readiness, for the supervisor, tests and load balancers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from smartmkt import registry

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> Any:
    settings = request.app.state.smartmkt.settings
    nlu = registry.served(settings.models_dir, "nlu")
    body = {"status": "ok" if nlu else "no_model", "nlu": nlu["fingerprint"] if nlu else None}
    return JSONResponse(body, status_code=200 if nlu else 503)
