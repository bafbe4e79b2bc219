"""The chat widget (GET /widget.js) in a real browser: on smartmkt's demo shop and on a shop page
from another origin whose CSS is hostile (``* { all: unset }`` and a full-page overlay in the
z-index war), against the running product (``web_stack``). The widget opens and closes, chats
(cards, quick replies, voice), keeps the conversation across pages, counts unread replies, traps
the keyboard focus in its panel, and axe-core finds no serious or critical violation in it.

The hostile page and its static server stand in for a shop's site (outside the product)."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import browser_hearing, chat_turn
from playwright.sync_api import Browser, Page, Playwright, expect

from smartmkt.runtime.stack import RunningStack
from smartmkt.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPLY_TIMEOUT_MS = 60_000
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
AXE = PROJECT_ROOT / "smartmkt" / "web" / "node_modules" / "axe-core" / "axe.min.js"
HOSTILE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A hostile shop page</title>
<style>
  * { all: unset !important; }
  html, body { display: block !important; font: 40px/2 serif !important; color: red !important; }
  button, input, div, section, p {
    display: inline !important; z-index: 1 !important; color: lime !important; }
  .overlay { display: block !important; position: fixed !important; inset: 0 !important;
    z-index: 2147483646 !important; background: rgba(255, 255, 0, 0.35) !important; }
</style></head>
<body>
<p>A shop whose stylesheet resets everything and covers the page.</p>
<div class="overlay"></div>
<script src="%(app)s/widget.js" data-title="Hostile shop help" data-color="#7a1fa2" data-position="left"
        data-greeting="Hi! Ask me for a film."></script>
</body></html>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hostile_page(tmp_path_factory: pytest.TempPathFactory, web_stack: RunningStack) -> Iterator[str]:
    """The hostile page, served from the other origin the stack allows (SMARTMKT_ALLOWED_ORIGINS)."""
    site = tmp_path_factory.mktemp("hostile-site")
    (site / "index.html").write_text(HOSTILE % {"app": web_stack.settings.app_url}, encoding="utf-8")
    port = int(urlsplit(web_stack.settings.allowed_origins).port or 0)
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/"
    server.shutdown()
    server.server_close()


def watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def open_panel(page: Page) -> None:
    launcher = page.locator(".launcher")
    expect(launcher).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    if launcher.get_attribute("aria-expanded") != "true":
        launcher.click()
    expect(page.locator(".panel")).to_be_visible()
    expect(page.locator("[data-smartmkt-widget]")).to_have_attribute(
        "data-connected", "true", timeout=REPLY_TIMEOUT_MS
    )


def say(page: Page, text: str) -> None:
    """Types into the widget and waits for the bot's turn."""
    chat_turn(page, ".panel input[type=text]", text, REPLY_TIMEOUT_MS)


def serious_violations(page: Page) -> list[dict[str, object]]:
    """axe-core's serious and critical violations inside the widget."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => {
          const widget = { include: [["[data-smartmkt-widget]"]] };
          const result = await axe.run(widget, { resultTypes: ["violations"] });
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target) }));
        }"""
    )
    return list(found)


def test_the_demo_shop_chats_and_keeps_the_conversation_across_pages(
    browser: Browser, web_stack: RunningStack
) -> None:
    context = browser.new_context(viewport={"width": 1100, "height": 900}, bypass_csp=True)  # axe's script
    page = context.new_page()
    errors = watch(page)
    page.goto(web_stack.settings.app_url + "/demo-shop?as=42")  # the demo shop's login: customer 42
    expect(page.locator(".shopper")).to_have_text("Signed in as demo customer 42.")
    expect(page.locator(".panel")).to_be_hidden()
    open_panel(page)
    expect(page.locator(".from-bot").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)  # the bot's hello
    say(page, "recommend me a comedy")
    cards = page.locator(".panel .card")
    expect(cards.first).to_be_visible()
    titles = [t.strip() for t in page.locator(".panel .card-title").all_inner_texts()]
    assert len(titles) >= 3, titles
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "widget-demo-shop.png"))
    assert serious_violations(page) == []

    # Escape closes the panel and gives the focus back to the launcher
    page.locator(".panel input[type=text]").focus()
    page.keyboard.press("Escape")
    expect(page.locator(".panel")).to_be_hidden()
    focused = "document.querySelector('[data-smartmkt-widget]').shadowRoot.activeElement.className"
    assert page.evaluate(focused).startswith("launcher")

    # another page of the shop: the same conversation, the panel as it was left (closed)
    page.goto(web_stack.settings.app_url + "/demo-shop/products/1")
    expect(page.locator(".panel")).to_be_hidden()
    open_panel(page)
    expect(page.locator(".panel .card-title").first).to_have_text(titles[0])
    expect(page.locator(".from-customer .msg-text").last).to_have_text("recommend me a comedy")

    # a reply that comes while the panel is closed counts on the launcher
    page.locator(".panel input[type=text]").fill("what did I order?")
    page.locator(".panel input[type=text]").press("Enter")
    page.locator(".close").click()
    expect(page.locator(".launcher .unread")).to_have_text("1", timeout=REPLY_TIMEOUT_MS)
    expect(page.locator(".launcher")).to_have_attribute("aria-label", "Chat with us, 1 unread")
    open_panel(page)
    expect(page.locator(".launcher .unread")).to_be_hidden()
    assert errors == []
    context.close()


def test_two_tabs_show_one_conversation(browser: Browser, web_stack: RunningStack) -> None:
    """Two tabs of the shop (one browser, one chat session): what the shopper says in one, and the
    bot's answer, appear in the other at once, each once, and are kept once (a reload shows the
    same). What was said and answered in the other tab is not counted unread there."""
    context = browser.new_context(viewport={"width": 1000, "height": 850})
    first, second = context.new_page(), context.new_page()
    errors = watch(first) + watch(second)
    first.goto(web_stack.settings.app_url + "/demo-shop?as=43")
    second.goto(web_stack.settings.app_url + "/demo-shop/products/2")
    open_panel(first)
    expect(first.locator(".from-bot").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)  # the bot's hello
    say(first, "recommend me a comedy")
    expect(first.locator(".panel .card").first).to_be_visible()

    expect(second.locator(".from-customer .msg-text")).to_have_text(["recommend me a comedy"])
    titles = first.locator(".panel .card-title").all_inner_texts()
    expect(second.locator(".panel .card-title")).to_have_text(titles)
    expect(second.locator(".launcher .unread")).to_be_hidden()  # seen in the first tab
    open_panel(second)
    say(second, "what did I order?")
    said = ["recommend me a comedy", "what did I order?"]
    expect(first.locator(".from-customer .msg-text")).to_have_text(said)

    def transcript(page: Page) -> list[str]:
        return [t.strip() for t in page.locator(".panel .msg").all_inner_texts()]

    bot_turns = second.locator(".from-bot").count()
    expect(first.locator(".from-bot")).to_have_count(bot_turns, timeout=REPLY_TIMEOUT_MS)
    assert transcript(first) == transcript(second)
    kept = transcript(second)
    first.reload()
    open_panel(first)
    expect(first.locator(".panel .msg")).to_have_count(len(kept))
    assert transcript(first) == kept  # kept once, not once per tab
    assert errors == []
    context.close()


def test_the_keyboard_stays_in_the_open_panel(browser: Browser, web_stack: RunningStack) -> None:
    context = browser.new_context(viewport={"width": 800, "height": 800})
    page = context.new_page()
    page.goto(web_stack.settings.app_url + "/demo-shop")
    page.locator(".launcher").focus()
    page.keyboard.press("Enter")
    expect(page.locator(".panel")).to_be_visible()
    active = "() => document.querySelector('[data-smartmkt-widget]').shadowRoot.activeElement?.className"
    seen = set()
    for _ in range(12):  # more Tabs than the panel has controls: focus never leaves it
        page.keyboard.press("Tab")
        inside = page.evaluate(
            "() => { const r = document.querySelector('[data-smartmkt-widget]').shadowRoot;"
            " return !!r.activeElement && r.querySelector('.panel').contains(r.activeElement); }"
        )
        assert inside
        seen.add(page.evaluate(active))
    assert {"close", "send"} <= seen, seen
    context.close()


def test_on_a_hostile_page_from_another_origin_it_works_voice_included(
    pw: Playwright, web_stack: RunningStack, hostile_page: str, tmp_path: Path
) -> None:
    browser = browser_hearing(pw, tmp_path, "can you recommend a comedy under ten dollars")
    try:
        context = browser.new_context(viewport={"width": 1000, "height": 850}, bypass_csp=True)
        context.grant_permissions(["microphone"], origin=hostile_page.rstrip("/"))
        page = context.new_page()
        errors = watch(page)
        page.goto(hostile_page)
        launcher = page.locator(".launcher")
        expect(launcher).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        box = launcher.bounding_box()
        assert box and box["x"] < 200 and box["height"] >= 40, box  # data-position="left", its own size
        colour = launcher.evaluate("(b) => getComputedStyle(b).backgroundColor")
        assert colour == "rgb(122, 31, 162)", colour  # data-color
        launcher.click()  # above the page's overlay: the click reaches it
        open_panel(page)
        expect(page.locator(".panel-title")).to_have_text("Hostile shop help")
        size = page.locator(".panel-title").evaluate("(h) => parseFloat(getComputedStyle(h).fontSize)")
        assert 14 <= size <= 20, size  # the widget's own 16 px, not the page's 40 px root font
        expect(page.locator(".from-bot").first).to_contain_text("Hi! Ask me for a film.")  # data-greeting
        say(page, "recommend me a comedy")
        expect(page.locator(".panel .card").first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "widget-hostile-page.png"))
        assert serious_violations(page) == []

        mic = page.locator(".panel .mic")
        before = page.locator(".from-bot").count()
        mic.hover()
        page.mouse.down()
        expect(mic).to_have_attribute("aria-pressed", "true")
        page.wait_for_timeout(4500)
        page.mouse.up()
        transcript = page.locator(".from-customer .msg-text").last
        expect(transcript).to_contain_text(re.compile("comedy", re.I), timeout=REPLY_TIMEOUT_MS)
        expect(page.locator(".from-bot")).to_have_count(before + 1, timeout=REPLY_TIMEOUT_MS)
        assert errors == []
        context.close()
    finally:
        browser.close()
