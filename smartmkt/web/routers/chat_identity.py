"""Customer tokens and chat sessions for the web chat (smartmkt.security.identity).

POST /chat/session     {"token"} -> 200 {"session_id", "customer_ref"}: a fresh, unguessable
                       session id bound to the token's customer; 401 for a missing, forged or
                       expired token. The shop's site issues the token; the chat page trades it
                       for a session id once and sends the token with every message.
POST /chat/demo-token  {"customer": "42" | null} -> 200 {"customer_ref", "token", "expires_at"}:
                       the demo page's picker acting as the shop's site (null: a new customer).
                       Only with SMARTMKT_DEMO_TOKENS=true (`make run` sets it); else 404.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from smartmkt.security.identity import Refused, issue_token, new_session_id, verify_token
from smartmkt.security.secrets import local_secret
from smartmkt.settings import Settings

router = APIRouter(prefix="/chat", tags=["chat"])
DEMO_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
NO_STORE = {"Cache-Control": "no-store"}


class TokenBody(BaseModel):
    token: str = Field(max_length=2048)


class DemoCustomer(BaseModel):
    customer: str | None = Field(default=None, max_length=64)


def _secret(request: Request) -> str:
    return local_secret(request.app.state.smartmkt.settings, "customer_token_secret")


@router.post("/session")
def chat_session(body: TokenBody, request: Request) -> Any:
    secret = _secret(request)
    try:
        ref = verify_token(secret, body.token)
    except Refused as exc:
        return JSONResponse({"error": str(exc)}, status_code=401, headers=NO_STORE)
    return JSONResponse({"session_id": new_session_id(secret, ref), "customer_ref": ref}, headers=NO_STORE)


@router.post("/demo-token")
def demo_token(body: DemoCustomer, request: Request) -> Any:
    settings: Settings = request.app.state.smartmkt.settings
    if not settings.demo_tokens:
        return JSONResponse({"error": "not found"}, status_code=404)
    ref = body.customer if body.customer is not None else f"web-{secrets.token_hex(8)}"
    if not DEMO_REF.match(ref):
        return JSONResponse(
            {"error": "a customer reference is 1-64 letters, digits, - or _"}, status_code=400
        )
    return issued_token(settings, ref)


def issued_token(settings: Settings, ref: str) -> JSONResponse:
    """A signed token for ``ref``, as a shop's token endpoint answers (what the chat and the
    widget read: ``customer_ref``, ``token``, ``expires_at``)."""
    now = time.time()
    secret = local_secret(settings, "customer_token_secret")
    token = issue_token(secret, ref, settings.customer_token_ttl_s, now)
    expires = datetime.fromtimestamp(int(now) + settings.customer_token_ttl_s, UTC)
    return JSONResponse(
        {"customer_ref": ref, "token": token, "expires_at": expires.isoformat().replace("+00:00", "Z")},
        headers=NO_STORE,
    )
