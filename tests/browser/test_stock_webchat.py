"""A shop that already runs the stock Rasa Webchat (npm rasa-webchat 1.0.1, its own bundle, as
``make setup`` unpacks it) points it at smartmkt's Rasa socket.io from a page on another origin
(one SMARTMKT_ALLOWED_ORIGINS lists), as a new user would. The replies render there: a
recommendation's list as a Markdown list, its products as the widget's carousel, a question's
answers as buttons, and no empty bubble.

The page and its static server stand in for the shop's site (outside the product); the widget,
Rasa, the actions and the app are the real ones (``web_stack``)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from smartmkt.runtime.stack import RunningStack
from smartmkt.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

BUNDLE = PROJECT_ROOT / "var" / "cache" / "npm" / "rasa-webchat-1.0.1" / "lib" / "index.js"
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
REPLY_TIMEOUT_MS = 60_000
BOT_BUBBLES = ".rw-from-response .rw-response"  # the bot's messages (not the typing indicator's)
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A shop with the stock Rasa Webchat</title></head>
<body>
<h1>A shop's page</h1>
<div id="chat" style="width: 420px; height: 640px"></div>
<script src="/rasa-webchat.js"></script>
<script>
  window.WebChat.default({
    socketUrl: "%(socket)s",
    socketPath: "/socket.io/",
    initPayload: "/greet",
    title: "Shop assistant",
    embedded: true,
    params: { storage: "session" },
  }, document.getElementById("chat"));
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def shop_page(tmp_path_factory: pytest.TempPathFactory, web_stack: RunningStack) -> Iterator[str]:
    """The shop's page with the widget, served from its own origin (another port)."""
    assert BUNDLE.exists(), f"{BUNDLE} is missing: run `make setup`"
    site = tmp_path_factory.mktemp("stock-webchat-site")
    (site / "index.html").write_text(PAGE % {"socket": web_stack.settings.rasa_url}, encoding="utf-8")
    (site / "rasa-webchat.js").write_bytes(BUNDLE.read_bytes())
    handler = functools.partial(QuietHandler, directory=str(site))
    allowed = urlsplit(web_stack.settings.allowed_origins)  # the stack allows this site's origin
    server = ThreadingHTTPServer(("127.0.0.1", int(allowed.port or 0)), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def widget(browser: Browser, shop_page: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 900, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(shop_page)
    expect(page.locator(BOT_BUBBLES).first).to_be_visible(timeout=REPLY_TIMEOUT_MS)  # the greeting
    yield page
    context.close()
    assert not errors, errors


def send(page: Page, text: str) -> None:
    page.locator(".rw-new-message").fill(text)
    page.locator(".rw-new-message").press("Enter")
    expect(page.locator(".rw-from-client").last).to_contain_text(text)


def typing_stops(page: Page) -> None:
    expect(page.locator(".rw-typing-indication")).to_have_count(0, timeout=REPLY_TIMEOUT_MS)


def no_empty_bubble(page: Page) -> None:
    texts = page.locator(BOT_BUBBLES).all_inner_texts()
    assert texts and all(t.strip() for t in texts), texts


def test_a_recommendation_renders_as_a_list_and_a_carousel(widget: Page, web_stack: RunningStack) -> None:
    send(widget, "recommend me a comedy")
    cards = widget.locator(".rw-carousel-card")
    expect(cards.first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    typing_stops(widget)
    titles = [t.strip() for t in widget.locator(".rw-carousel-card-title").all_inner_texts()]
    listed = [t.strip() for t in widget.locator(f"{BOT_BUBBLES} ol li").all_inner_texts()]
    assert len(titles) >= 3 and len(listed) == len(titles), (titles, listed)
    assert all(line.startswith(title) for line, title in zip(listed, titles, strict=True)), (listed, titles)
    no_empty_bubble(widget)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(SCREENSHOTS / "stock-rasa-webchat.png"))

    # a carousel button is a postback: "More like this" asks for more like that title
    before = widget.locator(".rw-carousel-container").count()
    cards.first.get_by_text("More like this").click()
    expect(widget.locator(".rw-carousel-container")).to_have_count(before + 1, timeout=REPLY_TIMEOUT_MS)
    typing_stops(widget)
    no_empty_bubble(widget)


def test_a_question_with_fixed_answers_has_buttons_that_answer_it(widget: Page) -> None:
    send(widget, "delete my data")
    answers = widget.locator(".rw-replies .rw-reply")
    keep = answers.filter(has_text="No, keep it")
    expect(keep).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    expect(answers.filter(has_text="Yes, delete my data")).to_be_visible()
    keep.click()
    expect(widget.locator(BOT_BUBBLES).last).to_contain_text(
        "I haven't deleted anything", timeout=REPLY_TIMEOUT_MS
    )
    typing_stops(widget)
    no_empty_bubble(widget)
