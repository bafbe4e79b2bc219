"""The shop API's reference: ``GET /api/openapi.json`` (its OpenAPI document: the /api/v1
routes only, not the app's internal ones) and ``GET /api/docs`` (Swagger UI over it, served from
the app's own npm assets, never from a CDN)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from smartmkt.web.routers import shop_api, shop_offers, shop_webhooks
from smartmkt.web.routers.pages import NO_STALE, PAGES_DIR

router = APIRouter(tags=["shop API docs"], include_in_schema=False)

DESCRIPTION = (
    "A shop's own systems send smartmkt its catalog, customers and orders, and its checkout checks "
    "and redeems the discount codes offers give. Every request takes an API key (`smartmkt apikey "
    "create --scope ...`) as `Authorization: Bearer smk_...`. Rows go through the same cleaning "
    "rules and quarantine as file imports; sending the same row again changes nothing."
)


@lru_cache(maxsize=1)
def shop_openapi() -> dict[str, Any]:
    document = get_openapi(
        title="smartmkt shop API",
        version="1",
        description=DESCRIPTION,
        routes=[*shop_api.router.routes, *shop_offers.router.routes, *shop_webhooks.router.routes],
    )
    return _without_fastapis_422(document)


def _without_fastapis_422(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 ``HTTPValidationError`` for every route with parameters; this app
    answers malformed input with a 400 ``{"error", "reasons"}`` instead (smartmkt.web.app), so
    that 422 is dropped where a route did not document its own."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            answer = operation.get("responses", {}).get("422", {})
            schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref", "").endswith("/HTTPValidationError"):
                del operation["responses"]["422"]
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return document


@router.get("/api/openapi.json")
async def openapi_document() -> dict[str, Any]:
    return shop_openapi()


@router.get("/api/docs", response_class=HTMLResponse)
async def api_docs_page() -> HTMLResponse:
    return HTMLResponse((PAGES_DIR / "api_docs.html").read_text(encoding="utf-8"), headers=NO_STALE)
