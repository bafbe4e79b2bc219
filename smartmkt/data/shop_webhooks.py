"""Orders and products from the two most used shop platforms' webhooks, as the shop API's rows.

Shopify (``X-Shopify-Hmac-Sha256``) and WooCommerce (``X-WC-Webhook-Signature``) both sign the
raw request body with HMAC-SHA256 under the webhook's secret and send the digest base64-encoded.
``verify`` checks it in constant time before anything is parsed; a request that fails is
answered 401 and nothing of it is kept.

``rows_of`` maps a verified payload to the rows the import takes (smartmkt.data.importer), by the
platform's topic header:

- Shopify ``orders/create`` (and ``orders/updated``, ``orders/paid``): the order's customer, then
  one order line per ``line_items`` entry (order id, customer id, product id, quantity, price,
  currency, ``created_at``). ``products/create`` and ``products/update``: the product (title,
  ``product_type`` as its category, the first variant's price, active when ``status`` is active).
- WooCommerce ``order.created`` (and ``order.updated``): the customer (``customer_id``), then the
  lines (``line_items``, ``date_created_gmt``). A guest order (``customer_id`` 0) names nobody
  to personalise for: it is acknowledged and not stored (rule ``webhook.guest_order``).
  ``product.created`` and ``product.updated``: name, categories, price, active when published.

Other topics are acknowledged and ignored, so the platform does not mark the webhook failing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

PLATFORMS: dict[str, tuple[str, str]] = {  # platform -> (signature header, topic header)
    "shopify": ("x-shopify-hmac-sha256", "x-shopify-topic"),
    "woocommerce": ("x-wc-webhook-signature", "x-wc-webhook-topic"),
}


def signature(secret: str, body: bytes) -> str:
    """The base64 HMAC-SHA256 of ``body`` under ``secret``, as both platforms send it."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, sent: str | None) -> bool:
    """Whether ``sent`` is the body's signature under ``secret`` (constant-time)."""
    return bool(secret) and bool(sent) and hmac.compare_digest(signature(secret, body), (sent or "").strip())


def delivery_key(platform: str, body: bytes) -> str:
    """What identifies one delivery: the same body again (a retry, or a replay of a captured
    request) has the same key."""
    return hashlib.sha256(platform.encode() + b"\n" + body).hexdigest()


@dataclass
class WebhookRows:
    """What one payload brings: rows per kind, in the order they must be imported."""

    topic: str
    customers: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None  # why the payload was acknowledged without storing anything

    def kinds(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [
            (k, rows)
            for k, rows in (
                ("customers", self.customers),
                ("products", self.products),
                ("orders", self.orders),
            )
            if rows
        ]


class PayloadError(ValueError):
    """A signed payload that is not what its topic promises (a 422 with this reason)."""


def rows_of(platform: str, topic: str, payload: Any) -> WebhookRows:
    if not isinstance(payload, Mapping):
        raise PayloadError("the payload is not a JSON object")
    mapper = MAPPERS.get((platform, topic))
    if mapper is None:
        return WebhookRows(topic, skipped=f"topic {topic!r} is not one smartmkt reads")
    try:
        return mapper(topic, payload)
    except (KeyError, TypeError, IndexError) as exc:
        raise PayloadError(f"a {topic} payload without {exc}") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _lines(
    order: Mapping[str, Any],
    customer_id: str,
    ordered_at: Any,
    money: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """An order's ``line_items`` as order lines; a line without a product (gift wrapping, a
    custom item) is left out: nothing to recommend from."""
    return [
        {
            "order_id": str(order["id"]),
            "customer_id": customer_id,
            "product_id": str(line["product_id"]),
            "quantity": line.get("quantity"),
            "currency": order.get("currency"),
            "ordered_at": ordered_at,
            **money(line),
        }
        for line in order["line_items"]
        if line.get("product_id")
    ]


# --- Shopify ---------------------------------------------------------------------------------------
def _shopify_order(topic: str, order: Mapping[str, Any]) -> WebhookRows:
    customer = order.get("customer") or {}
    if not customer.get("id"):
        return WebhookRows(topic, skipped="webhook.guest_order: the order names no customer")
    customer_id = str(customer["id"])
    customers = [{"customer_id": customer_id, "created_at": customer.get("created_at")}]
    lines = _lines(
        order, customer_id, order.get("created_at"), lambda line: {"unit_price": _text(line.get("price"))}
    )
    return WebhookRows(topic, customers=customers, orders=lines)


def _shopify_product(topic: str, product: Mapping[str, Any]) -> WebhookRows:
    variants = product.get("variants") or [{}]
    row = {
        "product_id": str(product["id"]),
        "title": product.get("title"),
        "category": product.get("product_type") or None,
        "price": _text(variants[0].get("price")),
        "active": "yes" if product.get("status", "active") == "active" else "no",
    }
    return WebhookRows(topic, products=[row])


# --- WooCommerce -----------------------------------------------------------------------------------
def _woo_order(topic: str, order: Mapping[str, Any]) -> WebhookRows:
    if not order.get("customer_id"):
        return WebhookRows(
            topic, skipped="webhook.guest_order: a guest order (customer_id 0) names no customer"
        )
    customer_id = str(order["customer_id"])
    when = order.get("date_created_gmt")
    when = f"{when}Z" if when and not str(when).endswith("Z") else when  # GMT, written without a zone
    lines = _lines(order, customer_id, when, lambda line: {"amount": _text(line.get("total"))})
    return WebhookRows(topic, customers=[{"customer_id": customer_id}], orders=lines)


def _woo_product(topic: str, product: Mapping[str, Any]) -> WebhookRows:
    names = [str(c["name"]) for c in product.get("categories") or [] if c.get("name")]
    row = {
        "product_id": str(product["id"]),
        "title": product.get("name"),
        "category": "|".join(names) or None,
        "price": _text(product.get("price") or product.get("regular_price")),
        "active": "yes" if product.get("status", "publish") == "publish" else "no",
    }
    return WebhookRows(topic, products=[row])


MAPPERS = {
    ("shopify", "orders/create"): _shopify_order,
    ("shopify", "orders/updated"): _shopify_order,
    ("shopify", "orders/paid"): _shopify_order,
    ("shopify", "products/create"): _shopify_product,
    ("shopify", "products/update"): _shopify_product,
    ("woocommerce", "order.created"): _woo_order,
    ("woocommerce", "order.updated"): _woo_order,
    ("woocommerce", "product.created"): _woo_product,
    ("woocommerce", "product.updated"): _woo_product,
}
