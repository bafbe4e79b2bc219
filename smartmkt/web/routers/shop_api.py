"""The shop API, version 1: a shop's own systems send its catalog, customers and orders.

Every route takes an API key with the route's scope (smartmkt.web.routers.shop_api_access). Rows
go through the same cleaning rules, duplicate rules and quarantine as a file import
(smartmkt.data.importer), one transaction per request, and are idempotent on the shop's ids:
sending the same product, customer or order line again changes nothing.

PUT  /api/v1/products/{id}   (catalog:write)   -> 201 created | 200 updated or unchanged | 422
PUT  /api/v1/customers/{id}  (customers:write) -> 201 | 200 | 422
POST /api/v1/orders          (orders:write)    one order line, or {"orders": [up to 10,000]}
     -> 200 with each row's fate (rows not accepted are listed with their rule) | 422 when no
     row was accepted
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from smartmkt.data.importer import Importer, RowsImport
from smartmkt.security.api_keys import Caller
from smartmkt.web.routers.shop_api_access import (
    PREFIX,
    REFUSALS,
    Imports,
    MayWriteCatalog,
    MayWriteCustomers,
    MayWriteOrders,
)

router = APIRouter(prefix=PREFIX, tags=["shop API"])

MAX_ROWS = 10_000  # order lines in one request
Ref = Annotated[str, Path(min_length=1, max_length=128, description="the shop's own id")]
Loose = str | int | float | None  # a value the cleaning rules read (as an import file's cell)


class Row(BaseModel):
    """Fields are read by the import's cleaning rules, as a file's cells are: a value they
    cannot read quarantines the row with the rule's name (a 422), not a 400."""

    model_config = ConfigDict(extra="forbid")


class ProductIn(Row):
    title: str | None = Field(default=None, max_length=512)
    category: str | None = Field(default=None, max_length=512, description="genres, '|'-separated")
    price: Loose = Field(default=None, description="e.g. 9.99 or '9,99 €'")
    currency: str | None = Field(default=None, max_length=8)
    year: Loose = None
    active: bool | str | None = None


class CustomerIn(Row):
    created_at: str | None = Field(default=None, max_length=64)
    age: Loose = None
    gender: str | None = Field(default=None, max_length=32)
    occupation: str | None = Field(default=None, max_length=128)
    postal_code: str | None = Field(default=None, max_length=32)
    country: str | None = Field(default=None, max_length=128)


class OrderLineIn(Row):
    """One order line; an order of several products is several lines with one ``order_id``."""

    order_id: str | None = Field(default=None, max_length=128)
    customer_id: str | int = Field(description="a customer the store knows (PUT it first)")
    product_id: str | int
    quantity: Loose = None
    unit_price: Loose = None
    amount: Loose = None
    currency: str | None = Field(default=None, max_length=8)
    ordered_at: str = Field(max_length=64)


class OrdersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    orders: list[OrderLineIn] = Field(min_length=1, max_length=MAX_ROWS)


class RowStored(BaseModel):
    id: str = Field(description="the shop's id")
    result: str = Field(description="created, updated or unchanged")
    run_id: int = Field(description="the import run that recorded the request")


class RowQuarantined(BaseModel):
    error: str = "row quarantined"
    rule: str = Field(description="the cleaning rule that set the row aside, e.g. invalid.money")
    detail: str
    run_id: int


class RowFate(BaseModel):
    index: int = Field(description="0-based position in the request")
    status: str = Field(description="quarantined or duplicate")
    rule: str | None
    detail: str | None


class BatchResult(BaseModel):
    run_id: int
    received: int
    accepted: int
    inserted: int
    unchanged: int
    quarantined: int
    duplicates: int
    rows: list[RowFate] = Field(description="every row not accepted; the others were")


ONE_ROW: dict[int | str, dict[str, Any]] = REFUSALS | {
    200: {"model": RowStored, "description": "updated, or unchanged"},
    201: {"model": RowStored, "description": "created"},
    422: {"model": RowQuarantined, "description": "a cleaning rule set the row aside; nothing was stored"},
}
BATCH: dict[int | str, dict[str, Any]] = REFUSALS | {
    200: {"model": BatchResult, "description": "at least one line accepted (or all were duplicates)"},
    422: {"model": BatchResult, "description": "no line accepted"},
}


def _rows(kind: str, rows: list[dict[str, Any]], importer: Importer, caller: Caller) -> RowsImport:
    return importer.import_rows(kind, rows, source=f"api:{caller.prefix}")


def _one(done: RowsImport, ref: str) -> JSONResponse:
    """A single row's answer: 201 inserted, 200 updated or unchanged, 422 quarantined."""
    outcome = done.rows[0]
    if outcome.status != "accepted":
        body = {
            "error": "row quarantined",
            "rule": outcome.rule,
            "detail": outcome.detail,
            "run_id": done.run_id,
        }
        return JSONResponse(body, status_code=422)
    report = done.report
    result = "created" if report.inserted else "updated" if report.updated else "unchanged"
    return JSONResponse(
        {"id": ref, "result": result, "run_id": done.run_id}, status_code=201 if report.inserted else 200
    )


@router.put("/products/{product_id}", summary="Create or update a product", responses=ONE_ROW)
def put_product(product_id: Ref, body: ProductIn, importer: Imports, caller: MayWriteCatalog) -> JSONResponse:
    row = {"product_id": product_id, **body.model_dump(exclude_unset=True)}
    return _one(_rows("products", [row], importer, caller), product_id)


@router.put("/customers/{customer_id}", summary="Create or update a customer", responses=ONE_ROW)
def put_customer(
    customer_id: Ref, body: CustomerIn, importer: Imports, caller: MayWriteCustomers
) -> JSONResponse:
    row = {"customer_id": customer_id, **body.model_dump(exclude_unset=True)}
    return _one(_rows("customers", [row], importer, caller), customer_id)


@router.post("/orders", summary="Add order lines (one, or a batch of up to 10,000)", responses=BATCH)
def post_orders(body: OrderLineIn | OrdersIn, importer: Imports, caller: MayWriteOrders) -> JSONResponse:
    lines = body.orders if isinstance(body, OrdersIn) else [body]
    done = _rows("orders", [line.model_dump(exclude_unset=True) for line in lines], importer, caller)
    report = done.report
    others = [vars(outcome) for outcome in done.rows if outcome.status != "accepted"]
    accepted = len(done.rows) - len(others)
    body_out = {
        "run_id": done.run_id,
        "received": len(done.rows),
        "accepted": accepted,
        "inserted": report.inserted,
        "unchanged": report.unchanged,
        "quarantined": sum(1 for o in others if o["status"] == "quarantined"),
        "duplicates": sum(1 for o in others if o["status"] == "duplicate"),
        "rows": others,  # every row not listed here was accepted
    }
    return JSONResponse(body_out, status_code=200 if accepted or not others else 422)
