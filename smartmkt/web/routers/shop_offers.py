"""The shop API's discount codes (/api/v1/offers): the shop's checkout checks a code an offer
gave a customer, and records its use on an order (smartmkt.store.offer_codes).

GET  /api/v1/offers/{code}   (offers:read)     ?customer_id=&product_id= -> 200 {"valid", "reason",
     "offer"} | 404 unknown code
POST /api/v1/offers/{code}/redeem (offers:write) {"customer_id", "order_id", "product_id"?}
     -> 200 recorded (or already recorded for that order) | 404 | 409 used by another order |
     410 expired or withdrawn | 422 another customer's or product's
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from smartmkt.store.offer_codes import CodeRefused, CodeView, check_code, redeem_code
from smartmkt.web.routers.shop_api_access import (
    PREFIX,
    REFUSALS,
    ApiError,
    MayReadOffers,
    MayRedeemOffers,
    Store,
)

router = APIRouter(prefix=PREFIX, tags=["discount codes"])

Code = Annotated[str, Path(min_length=1, max_length=64, description="as the customer typed it")]
ShopId = Annotated[str | None, Query(max_length=128)]


class CodeCheck(BaseModel):
    valid: bool = Field(description="whether the checkout may apply it now (for this customer and product)")
    reason: str | None = Field(description="why not, when not")
    offer: CodeView


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=128, description="the shop's id of the customer paying")
    order_id: str = Field(min_length=1, max_length=128, description="the shop's order the code was used on")
    product_id: str | None = Field(default=None, max_length=128, description="checked when given")


class Redeemed(BaseModel):
    recorded: bool = Field(description="False: this order had already redeemed it; nothing changed")
    offer: CodeView


class CodeError(BaseModel):
    error: str
    offer: CodeView | None = None


CODE_REFUSALS: dict[int | str, dict[str, Any]] = REFUSALS | {
    404: {"model": ApiError, "description": "no offer has this code"},
}


@router.get(
    "/offers/{code}",
    summary="Check a discount code at checkout",
    responses=CODE_REFUSALS | {200: {"model": CodeCheck}},
)
def get_offer(
    code: Code, engine: Store, _caller: MayReadOffers, customer_id: ShopId = None, product_id: ShopId = None
) -> JSONResponse:
    try:
        view, refused = check_code(engine, code, customer_id, product_id)
    except CodeRefused as unknown:
        return JSONResponse({"error": unknown.reason}, status_code=unknown.status)
    body = {"valid": refused is None, "reason": refused.reason if refused else None, "offer": view.as_dict()}
    return JSONResponse(body)


@router.post(
    "/offers/{code}/redeem",
    summary="Record a discount code's use on a shop order",
    responses=CODE_REFUSALS
    | {
        200: {"model": Redeemed},
        409: {"model": CodeError, "description": "already redeemed by another order"},
        410: {"model": CodeError, "description": "expired, or withdrawn when the customer opted out"},
        422: {"model": CodeError, "description": "bound to another customer or product"},
    },
)
def redeem_offer(code: Code, body: RedeemIn, engine: Store, _caller: MayRedeemOffers) -> JSONResponse:
    try:
        view, recorded = redeem_code(engine, code, body.customer_id, body.order_id, body.product_id)
    except CodeRefused as refused:
        offer = refused.view.as_dict() if refused.view else None
        return JSONResponse({"error": refused.reason, "offer": offer}, status_code=refused.status)
    return JSONResponse({"recorded": recorded, "offer": view.as_dict()})
