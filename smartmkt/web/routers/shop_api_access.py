"""What every shop API route (/api/v1) stands on: the app's store, and the API key a request
must carry with the route's scope (``Authorization: Bearer smk_...``, smartmkt.security.api_keys;
401 without a live key, 403 without the scope, 429 over the key's rate), and the refusals every
route documents."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from smartmkt.data.importer import Importer
from smartmkt.security.api_keys import Caller, Refused, authorize

PREFIX = "/api/v1"
BEARER = HTTPBearer(auto_error=False, description="an API key from `smartmkt apikey create`")


def store(request: Request) -> Engine:
    """The app's store engine (one per app: ``AppState.store``)."""
    return request.app.state.smartmkt.store  # type: ignore[no-any-return]


Store = Annotated[Engine, Depends(store)]


def shop_import(request: Request) -> Importer:
    """The import the API's rows go through: the file import's rules, in the shop's currency
    (SMARTMKT_CURRENCY) for a row that names none."""
    state = request.app.state.smartmkt
    return Importer(state.store, currency=state.settings.currency)


Imports = Annotated[Importer, Depends(shop_import)]


def scoped(scope: str) -> Any:
    """The dependency that lets a request through only with a live key that has ``scope``
    (and is under its rate limit)."""

    def check(
        engine: Store, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> Caller:
        try:
            return authorize(engine, credentials.credentials if credentials else None, scope)
        except Refused as refused:
            headers = {"WWW-Authenticate": "Bearer"} if refused.status == 401 else {}
            if refused.retry_after_s is not None:
                headers["Retry-After"] = str(refused.retry_after_s)
            raise HTTPException(refused.status, refused.reason, headers=headers or None) from None

    return Depends(check)


MayWriteCatalog = Annotated[Caller, scoped("catalog:write")]
MayWriteCustomers = Annotated[Caller, scoped("customers:write")]
MayWriteOrders = Annotated[Caller, scoped("orders:write")]
MayReadOffers = Annotated[Caller, scoped("offers:read")]
MayRedeemOffers = Annotated[Caller, scoped("offers:write")]


class ApiError(BaseModel):
    error: str = Field(description="what was wrong")


REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"model": ApiError, "description": "not a JSON object of the documented fields"},
    401: {"model": ApiError, "description": "no API key, an unknown one, or a revoked one"},
    403: {"model": ApiError, "description": "the key lacks the route's scope"},
    413: {"model": ApiError, "description": "the body is over SMARTMKT_API_MAX_BODY_BYTES (8 MiB)"},
    429: {"model": ApiError, "description": "over the key's requests per minute (see Retry-After)"},
}
