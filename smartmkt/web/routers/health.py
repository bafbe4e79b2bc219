"""Liveness and readiness, for the supervisor, tests and load balancers."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> Any:
    """Ready (200) when the NLU model is served: typed chat works. A model that failed its
    warm-up is named under ``not_ready``; if it is not the NLU (Whisper: only voice is down) the
    status is ``degraded`` and still 200, so a supervisor or balancer does not take typed chat
    away with it. Also names the NLU model served and why a newer one is not."""
    state = request.app.state.smartmkt
    served = state.nlu
    with contextlib.suppress(FileNotFoundError):
        served.get()
    not_ready = dict(state.warm_errors)
    if not served.path:
        not_ready["nlu"] = "no trained NLU model"
    status = "not_ready" if "nlu" in not_ready else "degraded" if not_ready else "ok"
    body = {
        "status": status,
        "nlu": served.path.name if served.path else None,
        "models": {"nlu": served.path.name if served.path else None},  # the versions served
        "reload_error": served.last_error,
        "warm_ms": state.warm_ms,
        "not_ready": not_ready,
    }
    return JSONResponse(body, status_code=503 if status == "not_ready" else 200)
