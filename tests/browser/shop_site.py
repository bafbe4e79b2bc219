"""A shop's own website, as a shop's developer builds it from docs/shop-widget.md: it stands in
for the shop (outside the product) in tests/browser/test_add_to_shop.py.

Static pages carrying the widget's script tag, the shop's token endpoint (it signs the logged-in
shopper's customer token with PyJWT, as any JWT library would), a product page per shop id and a
checkout that checks the discount code and redeems it through smartmkt's shop API
(``GET /api/v1/offers/{code}``, ``POST /api/v1/offers/{code}/redeem``) with an API key.

Run with the bot environment's Python (PyJWT is a Rasa dependency; the product itself has no
JWT library): ``python shop_site.py PORT APP_URL`` with ``SHOP_TOKEN_SECRET``, ``SHOP_API_KEY``
and ``SHOP_CUSTOMER`` (the shopper this site's login says is shopping) in the environment.
"""

from __future__ import annotations

import html
import itertools
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

PORT, APP = int(sys.argv[1]), sys.argv[2].rstrip("/")
SECRET, API_KEY, CUSTOMER = (os.environ[k] for k in ("SHOP_TOKEN_SECRET", "SHOP_API_KEY", "SHOP_CUSTOMER"))
ORDERS = itertools.count(1)

WIDGET = (
    f'<script src="{APP}/widget.js" data-title="Reel Corner assistant" '
    'data-token-url="/account/chat-token"></script>'
)
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>%(title)s · Reel Corner</title></head>
<body><main><h1>%(title)s</h1>%(body)s</main>%(widget)s</body></html>"""


def page(title: str, body: str) -> bytes:
    return (PAGE % {"title": html.escape(title), "body": body, "widget": WIDGET}).encode()


def api(method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    """smartmkt's shop API, called from the shop's server with its key."""
    request = urllib.request.Request(
        APP + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def checkout(product: str, code: str) -> bytes:
    """The shop's checkout: the code checked for this shopper and product, then redeemed."""
    query = urllib.parse.urlencode({"customer_id": CUSTOMER, "product_id": product})
    status, check = api("GET", f"/api/v1/offers/{urllib.parse.quote(code)}?{query}")
    if status != 200 or not check.get("valid"):
        reason = check.get("reason") or check.get("error")
        return page("Checkout", f'<p id="result">Code not accepted: {html.escape(str(reason))}</p>')
    order = f"shop-order-{next(ORDERS)}"
    status, redeemed = api(
        "POST",
        f"/api/v1/offers/{urllib.parse.quote(code)}/redeem",
        {"customer_id": CUSTOMER, "order_id": order, "product_id": product},
    )
    if status != 200:
        return page("Checkout", f'<p id="result">Code refused: {html.escape(str(redeemed.get("error")))}</p>')
    offer = check["offer"]
    assert isinstance(offer, dict)
    paid = f"{int(offer['offer_price_cents']) / 100:.2f} {offer['currency']}"
    text = f"Order {order} placed: {offer['percent_off']}% off {offer['product_title']}, you paid {paid}."
    return page("Thank you", f'<p id="result">{html.escape(text)}</p>')


class Shop(BaseHTTPRequestHandler):
    def send(self, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/":
            self.send(page("Reel Corner", "<p>Films for every evening. Ask our assistant.</p>"))
        elif path.startswith("/products/"):
            ref = html.escape(urllib.parse.unquote(path.removeprefix("/products/")))
            form = (
                f'<p>Product {ref}</p><form method="post" action="/products/{ref}/checkout">'
                '<label>Discount code <input name="code" autocomplete="off"></label>'
                "<button>Place order</button></form>"
            )
            self.send(page(f"Product {ref}", form))
        else:
            self.send(page("Not found", "<p>No such page.</p>"), status=404)

    def do_POST(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if path == "/account/chat-token":  # the shop's login says who is shopping
            issued = int(time.time())
            claims = {"sub": CUSTOMER, "iat": issued, "exp": issued + 600}
            token = jwt.encode(claims, SECRET, algorithm="HS256")
            expires = datetime.fromtimestamp(issued + 600, UTC).isoformat()
            answer = {"customer_ref": CUSTOMER, "token": token, "expires_at": expires}
            self.send(json.dumps(answer).encode(), "application/json")
        elif path.startswith("/products/") and path.endswith("/checkout"):
            product = urllib.parse.unquote(path.removeprefix("/products/").removesuffix("/checkout"))
            code = urllib.parse.parse_qs(body).get("code", [""])[0].strip()
            self.send(checkout(product, code))
        else:
            self.send(page("Not found", "<p>No such page.</p>"), status=404)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", PORT), Shop).serve_forever()
