"""HTTP hardening of the app, as one ASGI middleware (``Hardening``):

- **Security headers** on every response: a Content-Security-Policy without 'unsafe-inline'
  (the pages have no inline script, style or handler), ``frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  no-referrer``, a Permissions-Policy that gives the microphone to this origin only and
  ``Cross-Origin-Opener-Policy: same-origin``. The policy lets pages connect to Rasa's socket.io
  channel (where browsers reach it: SMARTMKT_CHAT_SOCKET_URL or Rasa's port on the page's host).
- **Body limits**: a JSON (or any non-multipart) body over ``SMARTMKT_MAX_JSON_BYTES`` (64 KiB;
  under /api/v1/, the shop API's, ``SMARTMKT_API_MAX_BODY_BYTES``, 8 MiB) and a multipart upload
  over twice the voice limit (``SMARTMKT_ASR_MAX_BYTES``) + 1 MiB get a 413 ``{"error": ...}``,
  counted as the bytes arrive (a missing or false Content-Length does not help).
- **Slow clients**: a body that does not arrive within ``BODY_TIMEOUT_S`` gets a 408 (uvicorn's
  own ``--timeout-keep-alive`` and ``--h11-max-incomplete-event-size`` bound idle connections
  and headers; see smartmkt/runtime/processes.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException

from smartmkt.settings import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_TIMEOUT_S = 30.0  # the whole request body, from its first byte to its last
MULTIPART_SLACK = 1024 * 1024  # form fields and boundaries around the audio of POST /voice
API_PREFIX = "/api/v1/"  # the shop API: its own body limit (SMARTMKT_API_MAX_BODY_BYTES)


class BodyTooLarge(HTTPException):
    """Raised while the app reads the body; FastAPI passes HTTP exceptions on, and the app's
    handler answers them as JSON (smartmkt/web/app.py)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyTooSlow(HTTPException):
    def __init__(self) -> None:
        super().__init__(408, "the request body arrived too slowly")


def socket_origins(settings: Settings, scheme: str, host: str) -> list[str]:
    """The origins browsers open Rasa's socket.io channel on (http(s) and ws(s) forms)."""
    if settings.chat_socket_url:
        parts = urlsplit(settings.chat_socket_url)
        scheme, netloc = parts.scheme or scheme, parts.netloc
    else:
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        netloc = f"{host}:{settings.rasa_port}"
    secure = scheme in ("https", "wss")
    return [f"{'https' if secure else 'http'}://{netloc}", f"{'wss' if secure else 'ws'}://{netloc}"]


def content_security_policy(settings: Settings, scheme: str, host: str) -> str:
    connect = " ".join(["'self'", *socket_origins(settings, scheme, host)])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "media-src 'self' blob: data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


# FastAPI's own API pages (/docs, /redoc) are an inline script and a bundle from jsDelivr: they get
# a policy of their own that allows exactly that (the product's pages never do).
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' https://cdn.jsdelivr.net",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "worker-src blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)


def _host(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"host":
            host = value.decode("latin-1")
            if host.startswith("["):
                return host.split("]")[0] + "]"
            return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    server = scope.get("server") or ("127.0.0.1", 0)
    return str(server[0])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Hardening:
    """Security headers, body size limits and a body timeout around the whole app."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_for(self, scope: Scope) -> int:
        content_type = (_header(scope, b"content-type") or "").lower()
        if content_type.startswith("multipart/form-data"):
            # twice the voice limit: POST /voice itself answers an upload just over its limit
            # ({"error": "too_large", ...}); this only stops runaway uploads from being spooled
            return 2 * self.settings.asr_max_bytes + MULTIPART_SLACK
        if str(scope.get("path", "")).startswith(API_PREFIX):
            return self.settings.api_max_body_bytes  # a shop's batch of order lines
        return self.settings.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (
            DOCS_CSP
            if scope.get("path") in DOCS_PATHS
            else content_security_policy(self.settings, scope.get("scheme", "http"), _host(scope))
        )
        headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"permissions-policy", b"microphone=(self), camera=(), geolocation=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []), *(h for h in headers if h[0] not in names)]
            await send(message)

        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._error(send_with_headers, 413, f"request body larger than {limit} bytes")
            return
        received = 0
        deadline: float | None = None

        async def limited_receive() -> Message:
            nonlocal received, deadline
            if deadline is None:
                deadline = time.monotonic() + BODY_TIMEOUT_S
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except TimeoutError as exc:
                raise BodyTooSlow() from exc
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                if not message.get("more_body", False):
                    deadline = float("inf")  # the body is complete: later receives wait for disconnect
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except (BodyTooLarge, BodyTooSlow) as exc:  # a route that read the body outside FastAPI's parsing
            if not started:
                await self._error(send_with_headers, exc.status_code, str(exc.detail))

    @staticmethod
    async def _error(send: Send, status: int, error: str) -> None:
        body = json.dumps({"error": error}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# The app's routes the chat widget calls from a shop's page (another origin): it binds a chat
# session to the shopper's token and sends voice messages. Only these answer CORS, and only to the
# origins the settings allow (SMARTMKT_ALLOWED_ORIGINS and the product's own pages).
WIDGET_PATHS = frozenset({"/chat/session", "/voice"})


class WidgetCors:
    """Starlette's CORS middleware on ``WIDGET_PATHS`` alone (module doc): no cookies (the
    widget's requests carry the customer token in their body), POST with a JSON body."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        from starlette.middleware.cors import CORSMiddleware

        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.resolved_allowed_origins,
            allow_methods=["POST"],
            allow_headers=["Content-Type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in WIDGET_PATHS:
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
