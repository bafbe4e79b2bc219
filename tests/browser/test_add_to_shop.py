"""Issue 18's "done when", as a shop's developer and a shopper go through it: a shop's static site
on another origin carries the widget's script tag and its own token endpoint; the shopper chats
there signed in as themselves, accepts an offer, follows the link to the shop's product page,
pays there with the discount code (the shop's checkout checks and redeems it through the shop API
with a key made by ``smartmkt apikey create``), and a marketer sees the redemption on the
console's Shop page.

The shop's site (tests/browser/shop_site.py) stands in for the shop, outside the product. The
product runs as a stack of its own: a shop connected (SMARTMKT_SHOP_PRODUCT_URL) changes what
"buy" does in the chat, which the other browser tests buy in smartmkt's demo store with."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import chat_turn, start_stack
from playwright.sync_api import Browser, expect

from smartmkt.console.users import create_user
from smartmkt.runtime.processes import settings_env
from smartmkt.runtime.stack import RunningStack, free_port
from smartmkt.security.secrets import local_secret
from smartmkt.settings import PROJECT_ROOT, Settings
from smartmkt.store.db import make_engine

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPLY_TIMEOUT_MS = 60_000
SHOPPER = "42"  # a customer of the demo store with a purchase history, so the bot makes an offer
MARKETER = ("shop-owner@shop.example", "a long enough password")


@pytest.fixture(scope="module")
def shop_origin() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def shop_stack(
    tmp_path_factory: pytest.TempPathFactory,
    demo_db_template: Path,
    base_settings: Settings,
    shop_origin: str,
) -> Iterator[RunningStack]:
    yield from start_stack(
        tmp_path_factory,
        demo_db_template,
        base_settings,
        "shop",
        allowed_origins=shop_origin,
        shop_product_url=shop_origin + "/products/{product_id}",
    )


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture(scope="module")
def shop_site(shop_stack: RunningStack, shop_origin: str) -> Iterator[str]:
    """The shop's site, with an API key made as the docs say (``smartmkt apikey create``)."""
    env = {**os.environ, **settings_env(shop_stack.settings)}
    smartmkt, scopes = str(Path(sys.executable).parent / "smartmkt"), "offers:read,offers:write"
    made = subprocess.run(
        [smartmkt, "apikey", "create", "--name", "reel-corner-checkout", "--scope", scopes, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = json.loads(made.stdout)["key"]
    port = int(shop_origin.rsplit(":", 1)[1])
    shop_env = {
        **os.environ,
        "SHOP_TOKEN_SECRET": local_secret(shop_stack.settings, "customer_token_secret"),
        "SHOP_API_KEY": key,
        "SHOP_CUSTOMER": SHOPPER,
    }
    python = PROJECT_ROOT / ".venv-bot" / "bin" / "python"  # PyJWT (a Rasa dependency) signs its tokens
    script = Path(__file__).with_name("shop_site.py")
    argv = [str(python), str(script), str(port), shop_stack.settings.app_url]
    server = subprocess.Popen(argv, env=shop_env)
    try:
        wait_for_port(port)
        yield shop_origin
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_shop_adds_the_widget_and_honours_its_codes(
    browser: Browser, shop_stack: RunningStack, shop_site: str
) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    # the shop's home page: the widget, signed in by the shop's own token endpoint
    page.goto(shop_site + "/")
    page.locator(".launcher").click()
    widget = page.locator("[data-smartmkt-widget]")
    expect(widget).to_have_attribute("data-connected", "true", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator(".panel-title")).to_have_text("Reel Corner assistant")
    expect(page.locator(".from-bot").first).to_contain_text("Welcome back", timeout=REPLY_TIMEOUT_MS)

    # an offer, accepted: its code and the product's page on the shop's site
    chat_turn(page, ".panel input[type=text]", "recommend me something", REPLY_TIMEOUT_MS)
    expect(page.locator(".panel .card.has-offer").first).to_be_visible()
    before = page.locator(".from-bot").count()
    page.get_by_role("button", name="Yes, I want it").last.click()
    expect(page.locator(".from-bot")).to_have_count(before + 1, timeout=REPLY_TIMEOUT_MS)
    card = page.locator(".panel .card.checkout").last
    expect(card).to_be_visible()
    code = card.locator(".offer-code").inner_text().strip()
    assert re.fullmatch(r"SMK-[A-Z0-9-]+", code), code
    assert code in page.locator(".from-bot .msg-text").last.inner_text()
    link = card.get_by_role("link", name="Buy it on the shop")
    href = link.get_attribute("href") or ""
    assert href.startswith(shop_site + "/products/"), href
    title = card.locator(".card-title").inner_text().strip()

    # the shop's product page: the same conversation in the widget, and the shop's checkout
    link.click()
    expect(page).to_have_url(href)
    page.locator(".launcher").click()
    expect(page.locator(".panel .card.checkout .offer-code").last).to_have_text(code)
    page.get_by_label("Discount code").fill(code)
    page.get_by_role("button", name="Place order").click()
    result = page.locator("#result")
    expect(result).to_contain_text("Order shop-order-1 placed")
    expect(result).to_contain_text("% off")

    # the code is spent: the shop's checkout refuses it a second time
    page.goto(href)
    page.get_by_label("Discount code").fill(code)
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#result")).to_contain_text("Code not accepted")

    # the marketer sees the redemption on the console's Shop page
    engine = make_engine(shop_stack.settings.resolved_database_url)
    try:
        create_user(engine, *MARKETER, role="marketer")
    finally:
        engine.dispose()
    page.goto(shop_stack.settings.app_url + "/console/shop")
    page.get_by_label("E-mail").fill(MARKETER[0])
    page.get_by_label("Password").fill(MARKETER[1])
    page.get_by_role("button", name="Sign in").click()
    row = page.locator("#redemptions tr", has_text=code)
    expect(row).to_have_count(1)
    for cell in (SHOPPER, title, "shop-order-1"):
        expect(row).to_contain_text(cell)
    assert errors == [], errors
    context.close()
