"""Reel Corner, smartmkt's demo shop (``GET /demo-shop``): a few catalog pages from the demo store
with the chat widget on each, as a shop adds it (one ``<script src="/widget.js" data-...>``).

- ``GET /demo-shop``: the first titles of the catalog; ``GET /demo-shop/products/{id}`` one title.
- Who is shopping: ``?as=42`` signs the demo's shopper in as demo customer 42 (a cookie of this
  shop, as a real shop's login would be; ``?as=`` signs out). Signed in, the widget gets
  ``data-token-url="/demo-shop/token"``, which issues that customer's signed token the way a
  shop's own endpoint would; signed out, the shopper chats as a guest. The token endpoint, like
  ``/chat/demo-token``, answers only when ``SMARTMKT_DEMO_TOKENS`` is on (`make run` turns it on).

Every value on the pages is HTML-escaped; the pages have no inline script or style.
"""

from __future__ import annotations

import html
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select

from smartmkt.catalog import money
from smartmkt.settings import Settings
from smartmkt.store.db import session_scope
from smartmkt.store.models import Product
from smartmkt.web.routers.chat_identity import issued_token
from smartmkt.web.routers.pages import NO_STALE, PAGES_DIR
from smartmkt.web.routers.shop_api_access import store

router = APIRouter(prefix="/demo-shop", tags=["pages"], include_in_schema=False)

SHOPPER_COOKIE = "reel_corner_shopper"
SHOPPER = re.compile(r"^[0-9]{1,6}$")
LISTED = 24  # titles on the front page


def _shopper(request: Request) -> str | None:
    value = request.cookies.get(SHOPPER_COOKIE, "")
    return value if SHOPPER.match(value) else None


def _page(request: Request, title: str, body: str, status: int = 200) -> HTMLResponse:
    shopper = _shopper(request)
    said = f"Signed in as demo customer {shopper}." if shopper else "Browsing as a guest."
    widget = '<script src="/widget.js" data-title="Reel Corner assistant"'
    if shopper:
        widget += ' data-token-url="/demo-shop/token"'
    widget += "></script>"
    page = (PAGES_DIR / "demo_shop.html").read_text(encoding="utf-8")
    page = page.replace("{{title}}", html.escape(title)).replace("{{shopper}}", html.escape(said))
    page = page.replace("<!--body-->", body).replace("<!--widget-->", widget)
    return HTMLResponse(page, status_code=status, headers=NO_STALE)


def _product_card(product: Product) -> str:
    details = " · ".join(x for x in (str(product.year or ""), product.genres.replace("|", ", ")) if x)
    return (
        f'<h2><a href="/demo-shop/products/{product.id}">{html.escape(product.title)}</a></h2>'
        f"<p>{html.escape(details)}</p>"
        f'<p class="price">{html.escape(money(product.price_cents, product.currency))}</p>'
    )


def _sign_in(request: Request) -> RedirectResponse | None:
    """``?as=N`` signs the demo shopper in as customer N (``?as=`` out): the shop's own cookie,
    then back to the page without the query. None when the request does not ask."""
    if "as" not in request.query_params:
        return None
    chosen = request.query_params["as"]
    redirect = RedirectResponse(request.url.path, status_code=303)
    if SHOPPER.match(chosen):
        redirect.set_cookie(SHOPPER_COOKIE, chosen, httponly=True, samesite="lax", path="/demo-shop")
    else:
        redirect.delete_cookie(SHOPPER_COOKIE, path="/demo-shop")
    return redirect


@router.get("", response_class=HTMLResponse)
def front_page(request: Request) -> Any:
    if signing := _sign_in(request):
        return signing
    with session_scope(store(request)) as s:
        listed = select(Product).where(Product.active.is_(True)).order_by(Product.id).limit(LISTED)
        cards = "".join(f'<li class="product">{_product_card(p)}</li>' for p in s.scalars(listed))
    body = f'<ul class="products">{cards}</ul>' if cards else "<p>The catalog is empty.</p>"
    return _page(request, "Movies", body)


@router.get("/products/{product_id}", response_class=HTMLResponse)
def product_page(product_id: int, request: Request) -> Any:
    if signing := _sign_in(request):
        return signing
    with session_scope(store(request)) as s:
        product = s.scalars(select(Product).where(Product.id == product_id, Product.active.is_(True))).first()
        if product is None:
            return _page(request, "Not found", "<p>No such title.</p>", status=404)
        title, body = product.title, f'<article class="detail product">{_product_card(product)}</article>'
    return _page(request, title, body)


@router.post("/token")
def shopper_token(request: Request) -> Any:
    """The signed-in demo shopper's customer token, as a shop's own endpoint issues one."""
    settings: Settings = request.app.state.smartmkt.settings
    shopper = _shopper(request)
    if not settings.demo_tokens:
        return JSONResponse({"error": "not found"}, status_code=404)
    if shopper is None:
        return JSONResponse({"error": "not signed in to the demo shop"}, status_code=401)
    return issued_token(settings, shopper)
