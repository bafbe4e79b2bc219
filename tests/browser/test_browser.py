"""The web chat and the marketer console in a real browser: Debian's chromium driven by
Playwright (never a browser Playwright downloads), against the real Rasa server, action server
and app on free ports (``web_stack``: their own copy of the demo store).

The tests in this module follow one customer's visit and then the marketer who reviews it, so
they run in file order and share one browser context (its localStorage is the chat's memory).
Screenshots land in test-artifacts/screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import browser_hearing, chat_turn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from smartmkt.console.users import create_user
from smartmkt.runtime.stack import RunningStack
from smartmkt.store.db import make_engine

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
XSS = "<img src=x onerror=alert(1)>"
# more markup a customer might type (issue 7): each must show as the text typed, run nothing
MORE_XSS = [
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)>',
    "<iframe src=javascript:alert(4)></iframe>",
]
REPLY_TIMEOUT_MS = 60_000
MARKETER = ("marketer@shop.example", "a long enough password")
# Runs before the page's own scripts: the meta SMARTMKT_CHAT_TOKEN_URL=/account/chat-token writes
SHOP_TOKEN_URL_SET = """new MutationObserver((_records, observer) => {
  const meta = document.querySelector('meta[name="smartmkt-token-url"]');
  if (meta) { meta.content = "/account/chat-token"; observer.disconnect(); }
}).observe(document, { childList: true, subtree: true });"""


@dataclass
class Tab:
    """A page and what it did that a test must check: dialogs (alert...) and script errors."""

    page: Page
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, context: BrowserContext) -> Tab:
        tab = cls(context.new_page())
        tab.page.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
        tab.page.on("pageerror", lambda e: tab.errors.append(str(e)))
        # the app's Content-Security-Policy must not block anything the pages themselves do
        tab.page.on(
            "console",
            lambda m: tab.errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        return tab

    def shot(self, name: str, full_page: bool = True) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture(scope="module")
def chat(browser: Browser, web_stack: RunningStack) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = Tab.open(context)
    yield tab
    context.close()


def connected(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-connected", "true", timeout=REPLY_TIMEOUT_MS)


def say(page: Page, text: str) -> None:
    """Types a message and sends it with Enter; waits until the bot's answer is on the page."""
    chat_turn(page, "#chat-input", text, REPLY_TIMEOUT_MS)


def last_bot(page: Page) -> str:
    return page.locator(".from-bot").last.inner_text()


def card_titles(section) -> list[str]:  # type: ignore[no-untyped-def]
    return [t.strip() for t in section.locator(".card-title").all_inner_texts()]


def pick_customer(page: Page, customer: str) -> None:
    page.get_by_label("Customer number (1 to 943)").fill(customer)
    page.get_by_role("button", name="Switch to this customer").click()
    expect(page.locator("#customer-now")).to_have_text(f"You are chatting as demo customer {customer}.")
    connected(page)


# --- the customer's visit ---------------------------------------------------------------------
def test_customer_42_gets_product_cards_and_quick_replies_work(chat: Tab, web_stack: RunningStack) -> None:
    page = chat.page
    page.goto(web_stack.settings.app_url + "/")
    pick_customer(page, "42")
    expect(page.locator(".from-bot").first).to_contain_text("Welcome back", timeout=REPLY_TIMEOUT_MS)

    # the typing indicator shows while the bot works (watched from before the message is sent)
    page.evaluate(
        """() => { window.__typingSeen = false;
        new MutationObserver(() => { if (document.getElementById('typing').classList.contains('on'))
          window.__typingSeen = true; }).observe(document.getElementById('typing'), {attributes: true}); }"""
    )
    say(page, "can you recommend a comedy?")
    assert page.evaluate("window.__typingSeen") is True

    first = page.locator(".recs").last
    expect(first.locator(".card").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    assert first.locator(".card").count() >= 3
    for card in first.locator(".card").all():
        assert card.locator(".card-title").inner_text().strip()
        assert "Comedy" in card.locator(".card-meta").inner_text()
        assert re.search(r"\$\d+\.\d\d", card.locator(".card-price").inner_text())
    offer_card = first.locator(".card.has-offer")
    expect(offer_card).to_have_count(1)  # the policy's one offer, on the top pick
    badge = offer_card.locator(".badge").inner_text()
    assert re.fullmatch(r"\d+% off until [A-Z][a-z]{2} \d{1,2}", badge.strip()), badge
    # the text reply keeps its intro and offer line; the list itself is the cards
    assert "Special offer for you" in last_bot(page)
    assert not re.search(r"^\d+\. ", last_bot(page), re.MULTILINE)
    chat.shot("chat-42-cards.png")

    # "show more like this": a new set of titles like it, without it
    liked = card_titles(first)[0]
    first.locator(".card").first.get_by_role("button", name=f"Show more like this: {liked}").click()
    expect(page.locator(".from-customer .msg-text").last).to_have_text(f"Show more like {liked}")
    expect(page.locator(".recs")).to_have_count(2, timeout=REPLY_TIMEOUT_MS)
    more = page.locator(".recs").last
    assert liked not in card_titles(more)

    # "Buy" buys that title (there is no cart step, and the button says so)
    chosen_card = (
        more.locator(".card.has-offer")
        if more.locator(".card.has-offer").count()
        else more.locator(".card").first
    )
    chosen = chosen_card.locator(".card-title").inner_text().strip()
    bot_before = page.locator(".from-bot").count()
    chosen_card.get_by_role("button", name=f"Buy: {chosen}").click()
    expect(page.locator(".from-bot")).to_have_count(bot_before + 1, timeout=REPLY_TIMEOUT_MS)
    assert "I've ordered " + chosen in last_bot(page)

    # "no thanks" with nothing pending: the bot says fine and asks what else
    bot_before = page.locator(".from-bot").count()
    more.locator(".card").nth(1).get_by_role("button", name=re.compile("^No thanks")).click()
    expect(page.locator(".from-bot")).to_have_count(bot_before + 1, timeout=REPLY_TIMEOUT_MS)
    assert "No problem" in last_bot(page)
    assert not chat.dialogs and not chat.errors


def test_a_reload_keeps_the_conversation(chat: Tab) -> None:
    page = chat.page
    before = page.locator("#log > *").count()
    texts = page.locator(".msg").all_inner_texts()
    page.reload()
    connected(page)
    expect(page.locator("#customer-now")).to_have_text("You are chatting as demo customer 42.")
    expect(page.locator("#log > *")).to_have_count(before)
    assert page.locator(".msg").all_inner_texts() == texts
    # and the bot remembers too: the same customer and the same Rasa conversation
    say(page, "what did I order?")
    assert "order" in last_bot(page).lower()


def test_html_in_a_message_is_shown_as_text(chat: Tab) -> None:
    page = chat.page
    for payload in (*MORE_XSS, XSS):
        say(page, payload)
        expect(page.locator(".from-customer .msg-text").last).to_have_text(payload)
    assert page.locator("#log img, #log script, #log svg:not(.mic-icon), #log iframe").count() == 0
    page.wait_for_timeout(500)  # an <img src=x> would have failed to load by now
    assert chat.dialogs == [] and not chat.errors


def test_phone_width_has_no_horizontal_overflow(chat: Tab) -> None:
    page = chat.page
    page.set_viewport_size({"width": 375, "height": 812})
    try:
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        sticking_out = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
              .filter(e => !e.closest('.visually-hidden') && !e.classList.contains('skip-link'))
              .filter(e => { const r = e.getBoundingClientRect(); return r.width && r.right > 375.5; })
              .map(e => e.tagName + '.' + e.className)"""
        )
        assert sticking_out == []
        page.locator("#log").evaluate("log => { log.scrollTop = log.scrollHeight - 900; }")
        chat.shot("chat-phone-375.png", full_page=False)  # the chat's height follows the viewport
    finally:
        page.set_viewport_size({"width": 1100, "height": 900})


def test_keyboard_only(chat: Tab) -> None:
    page = chat.page
    page.reload()
    connected(page)
    # the first Tab stop is the skip link, and it lands in the message box
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "chat-input"
    # from the top of the page, Tab alone reaches the message box (through the cards' buttons)
    page.evaluate("document.activeElement.blur()")
    for _ in range(300):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "chat-input":
            break
    assert page.evaluate("document.activeElement.id") == "chat-input"
    bot_before = page.locator(".from-bot").count()
    page.keyboard.type("thank you")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "send"
    page.keyboard.press("Enter")
    expect(page.locator(".from-customer .msg-text").last).to_have_text("thank you")
    expect(page.locator(".from-bot")).to_have_count(bot_before + 1, timeout=REPLY_TIMEOUT_MS)
    # a card's quick reply by keyboard: focus it, press Enter
    button = page.locator(".recs").last.get_by_role("button", name=re.compile("^No thanks")).first
    button.focus()
    bot_before = page.locator(".from-bot").count()
    page.keyboard.press("Enter")
    expect(page.locator(".from-bot")).to_have_count(bot_before + 1, timeout=REPLY_TIMEOUT_MS)
    assert page.evaluate("document.activeElement.id") == "chat-input"  # back to typing


def test_buy_it_among_several_titles_asks_which_with_buttons(
    browser: Browser, web_stack: RunningStack
) -> None:
    """Demo customer 7 in a tab of its own: the offer card's "No thanks" declines that offer only;
    then "buy it" with five titles shown and none pending asks which, the question's titles
    numbered in its text and a button each under it, and orders nothing until one is clicked."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = Tab.open(context)
    page = tab.page
    page.goto(web_stack.settings.app_url + "/")
    pick_customer(page, "7")
    expect(page.locator(".from-bot").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    say(page, "recommend me a western")
    recs = page.locator(".recs").last
    expect(recs.locator(".card").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    titles = card_titles(recs)
    assert len(titles) >= 2
    if recs.locator(".card.has-offer").count():
        bot_before = page.locator(".from-bot").count()
        recs.locator(".card.has-offer").get_by_role("button", name=re.compile("^No thanks")).click()
        expect(page.locator(".from-bot")).to_have_count(bot_before + 1, timeout=REPLY_TIMEOUT_MS)
        assert "No problem" in last_bot(page)
    engine = make_engine(web_stack.settings.resolved_database_url)
    try:

        def orders() -> int:
            with engine.connect() as conn:
                return int(
                    conn.exec_driver_sql("SELECT count(*) FROM orders WHERE customer_id = 7").scalar_one()
                )

        before = orders()
        say(page, "buy it")
        question = last_bot(page)
        assert "Which one would you like to buy?" in question
        for n, title in enumerate(titles, start=1):
            assert f"\n{n}. {title}" in question
        row = page.locator(".quick-row").last
        expect(row.get_by_role("button")).to_have_count(len(titles))
        assert [b.strip() for b in row.get_by_role("button").all_inner_texts()] == titles
        assert orders() == before
        tab.shot("chat-which-one.png")
        bot_before = page.locator(".from-bot").count()
        row.get_by_role("button", name=titles[1], exact=True).click()
        expect(page.locator(".from-bot")).to_have_count(bot_before + 1, timeout=REPLY_TIMEOUT_MS)
        assert f"I've ordered {titles[1]}" in last_bot(page)
        assert orders() == before + 1
    finally:
        engine.dispose()
    assert not tab.dialogs and not tab.errors
    context.close()


# --- the marketer reviews it ----------------------------------------------------------------------
def test_console_finds_the_conversation_and_shows_intent_and_offer(
    browser: Browser, web_stack: RunningStack
) -> None:
    engine = make_engine(web_stack.settings.resolved_database_url)
    create_user(engine, *MARKETER, role="marketer")
    engine.dispose()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab.open(context)
    page = tab.page
    app = web_stack.settings.app_url

    page.goto(app + "/console/conversations")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))
    page.get_by_label("E-mail").fill(MARKETER[0])
    page.get_by_label("Password").fill("wrong password, surely")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-status")).to_have_text("Wrong e-mail or password.")
    page.get_by_label("Password").fill(MARKETER[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/conversations$"))
    expect(page.locator("#console-nav")).to_contain_text(MARKETER[0])
    expect(page.get_by_role("link", name="Users")).to_have_count(0)  # admins only

    page.get_by_label("Customer id").fill("42")
    page.get_by_label("Intent").select_option("ask_recommendation")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"customer=42"))
    rows = page.locator("#results tbody tr[data-sender]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ask_recommendation")
    csv_link = page.get_by_role("link", name="Export CSV").get_attribute("href") or ""
    assert "customer=42" in csv_link and "intent=ask_recommendation" in csv_link
    tab.shot("console-conversations.png")

    rows.first.get_by_role("link", name="42").click()
    # the conversation is the chat's random session id; the console names the verified customer
    expect(page).to_have_url(re.compile(r"/console/conversations/s1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"))
    expect(page.locator("#title")).to_have_text("Conversation with customer 42")
    asked = page.locator(".turn.customer", has_text="can you recommend a comedy?")
    expect(asked).to_have_count(1)
    expect(asked.locator(".facts")).to_contain_text("ask_recommendation")
    expect(asked.locator(".facts")).to_contain_text(re.compile(r"\d+\.\d% confidence"))
    offered = page.locator(".turn.bot", has_text="Special offer for you").first
    expect(offered.locator(".facts")).to_contain_text(re.compile(r"% off"))
    outcome = re.compile(r"shown|accepted|declined|withdrawn")
    expect(offered.locator(".facts .tag.offer")).to_have_text(outcome)
    expect(offered.locator(".facts")).to_contain_text("Recommended")

    # the HTML message from the chat is text here too
    xss_turn = page.locator(".turn.customer .turn-text", has_text="onerror")
    expect(xss_turn).to_have_text(XSS)
    assert page.locator("#turns img, #turns script, #turns iframe").count() == 0
    for payload in MORE_XSS:
        expect(page.locator(".turn.customer .turn-text", has_text=payload)).to_have_text(payload)
    page.wait_for_timeout(500)
    tab.shot("console-transcript.png")

    # NLU review: mark the right intent (and an entity) for the comedy request
    asked.get_by_text("Review NLU").click()
    expect(asked.get_by_label("Correct intent")).to_have_value("ask_recommendation")  # the NLU's, to correct
    asked.get_by_label("Correct intent").select_option("ask_recommendation")
    for remove in asked.get_by_role("button", name=re.compile("^Remove")).all():  # what the NLU found
        remove.click()
    expect(asked.locator(".entity-row")).to_have_count(0)
    asked.get_by_role("button", name="Add an entity").click()
    asked.locator(".entity-row").last.get_by_label("Type").select_option("category")
    asked.locator(".entity-row").last.get_by_label("Words in the message").fill("comedy")
    asked.get_by_role("button", name="Save review").click()
    expect(asked.locator(".review-form .status")).to_have_text(re.compile(r"^Saved: ask_recommendation"))
    page.goto(app + "/console/nlu-reviews")
    expect(page.locator("#reviews")).to_contain_text("can you recommend a comedy?")

    page.goto(app + "/console/dashboard")
    expect(page.locator("#kpis")).to_contain_text("Offers made")
    assert page.evaluate("typeof Chart === 'function' && !!Chart.getChart('c-days')")
    tab.shot("console-dashboard.png")
    assert tab.dialogs == [] and not tab.errors
    context.close()


# --- push to talk -----------------------------------------------------------------------------------
def test_push_to_talk_shows_the_transcript_and_the_reply(
    pw: Playwright, web_stack: RunningStack, tmp_path: Path
) -> None:
    """Chromium's fake microphone plays an espeak-ng recording once; the mic button is held
    while it plays. The page records it with MediaRecorder (webm/opus) and posts it to /voice."""
    browser = browser_hearing(pw, tmp_path, "can you recommend a comedy under ten dollars")
    try:
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.grant_permissions(["microphone"], origin=web_stack.settings.app_url)
        tab = Tab.open(context)
        page = tab.page
        page.goto(web_stack.settings.app_url + "/")
        page.get_by_role("button", name="New customer").click()
        connected(page)
        expect(page.locator(".from-bot").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)

        # sound on: the replies go to speechSynthesis (recorded here; headless has no speakers)
        page.evaluate(
            "() => { window.__spoken = []; speechSynthesis.speak = (u) => window.__spoken.push(u.text); }"
        )
        page.get_by_label("Read replies aloud").check()

        mic = page.locator("#mic")
        mic.hover()
        page.mouse.down()
        expect(mic).to_have_attribute("aria-pressed", "true")
        page.wait_for_timeout(4500)  # the recording is ~2.5 s of speech in 4.8 s
        page.mouse.up()
        expect(mic).to_have_attribute("aria-pressed", "false")
        transcript = page.locator(".from-customer .msg-text").last
        expect(transcript).to_contain_text(re.compile("comedy", re.I), timeout=REPLY_TIMEOUT_MS)
        expect(page.locator(".recs .card").first).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        spoken = page.evaluate("window.__spoken")
        assert any("Special offer" in text for text in spoken), spoken  # the welcome offer, read aloud
        tab.shot("chat-voice.png")
        assert tab.dialogs == [] and not tab.errors
        context.close()
    finally:
        browser.close()


def test_on_the_shops_own_page_the_shop_says_who_is_chatting(
    browser: Browser, web_stack: RunningStack
) -> None:
    """Production (SMARTMKT_CHAT_TOKEN_URL set): no picker; the page asks the shop's own endpoint
    for its logged-in shopper's signed token. The shop's site is outside the product, so Playwright
    plays it here: it serves the token endpoint, and the page's token-URL meta is set as the app
    sets it with the setting on (that the setting does so is tested in tests/test_web_chat.py).
    Rewriting the served page instead would make Chromium treat it as a public page and block its
    socket to Rasa on 127.0.0.1 (local network access checks)."""
    from datetime import UTC, datetime, timedelta

    from smartmkt.security.identity import issue_token
    from smartmkt.security.secrets import local_secret

    app = web_stack.settings.app_url
    secret = local_secret(web_stack.settings, "customer_token_secret")
    asked: list[str] = []

    def shop_token(route) -> None:  # type: ignore[no-untyped-def]
        asked.append(route.request.method)
        expires = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
        token = issue_token(secret, "42", 600)
        route.fulfill(json={"customer_ref": "42", "token": token, "expires_at": expires})

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    try:
        tab = Tab.open(context)
        tab.page.add_init_script(SHOP_TOKEN_URL_SET)
        tab.page.route(app + "/account/chat-token", shop_token)
        tab.page.goto(app + "/")
        expect(tab.page.locator("#customer-form")).to_be_hidden()
        connected(tab.page)
        expect(tab.page.locator(".from-bot").first).to_contain_text("Welcome back", timeout=REPLY_TIMEOUT_MS)
        assert asked == ["POST"] and not tab.errors and not tab.dialogs
    finally:
        context.close()


def test_the_shop_api_reference_renders_under_the_apps_policy(
    browser: Browser, web_stack: RunningStack
) -> None:
    """/api/docs: Swagger UI from the app's own assets lists the shop API's routes and offers to
    take a key, with nothing blocked by the Content-Security-Policy and no script error."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = Tab.open(context)
    try:
        tab.page.goto(web_stack.settings.app_url + "/api/docs")
        for path in ("/api/v1/products/{product_id}", "/api/v1/customers/{customer_id}", "/api/v1/orders"):
            expect(tab.page.get_by_text(path, exact=True).first).to_be_visible(timeout=30_000)
        expect(tab.page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
        tab.shot("api-docs.png", full_page=False)
        assert tab.errors == [], tab.errors
    finally:
        context.close()


def test_the_consoles_shop_page_shows_a_redemption_and_a_delivery(
    browser: Browser, web_stack: RunningStack
) -> None:
    """/console/shop in the browser: the tables render from the console API under the console's
    policy (a code redeemed at the shop's checkout, the webhook delivery it made)."""
    from datetime import timedelta

    from smartmkt.store.offer_codes import redeem_code
    from smartmkt.store.outbox import add_endpoint
    from smartmkt.store.repository import StoreRepository

    engine = make_engine(web_stack.settings.resolved_database_url)
    try:
        create_user(engine, "shop-page@shop.example", MARKETER[1], role="marketer")
        add_endpoint(engine, "https://shop.example/hooks", ["offer.redeemed"])
        view = StoreRepository(engine).create_offer("311", 50, 10, "r", "r", {}, "text", timedelta(days=1))
        assert view is not None and view.code
        redeem_code(engine, view.code, "311", "browser-order-1")
    finally:
        engine.dispose()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Tab.open(context)
    try:
        page = tab.page
        page.goto(web_stack.settings.app_url + "/console/shop")
        expect(page).to_have_url(re.compile(r"/console/login\?next="))
        page.get_by_label("E-mail").fill("shop-page@shop.example")
        page.get_by_label("Password").fill(MARKETER[1])
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/console/shop$"))
        expect(page.locator("#redemptions")).to_contain_text(view.code)
        expect(page.locator("#redemptions")).to_contain_text("browser-order-1")
        expect(page.locator("#deliveries")).to_contain_text("offer.redeemed")
        expect(page.get_by_role("link", name="Shop")).to_have_attribute("aria-current", "page")
        tab.shot("console-shop.png", full_page=False)
        assert tab.errors == [], tab.errors
    finally:
        context.close()
