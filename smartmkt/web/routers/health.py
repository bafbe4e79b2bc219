"""Liveness and readiness, for the supervisor, tests and load balancers."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> Any:
    """Ready when an NLU model is served; says which one, and why a newer one is not."""
    served = request.app.state.smartmkt.nlu
    with contextlib.suppress(FileNotFoundError):
        served.get()
    body = {
        "status": "ok" if served.path else "no_model",
        "nlu": served.path.name if served.path else None,
        "reload_error": served.last_error,
    }
    return JSONResponse(body, status_code=200 if served.path else 503)
