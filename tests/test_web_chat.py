"""The pages the app serves (the web chat at GET /, the console pages), their assets, and the
rules that keep them safe to put user text in and ready for a strict CSP. The browser tests
(tests/browser) drive the same pages in chromium against the running product."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from smartmkt.settings import Settings, get_settings
from smartmkt.web.app import create_app
from smartmkt.web.routers.pages import NODE_MODULES, PAGES_DIR, STATIC_DIR, VENDOR

CONSOLE_PAGES = [
    "/console/login",
    "/console/conversations",
    "/console/conversations/42",
    "/console/dashboard",
    "/console/nlu-reviews",
    "/console/users",
]


def client(settings: Settings | None = None) -> TestClient:
    """Without the lifespan: these pages need no model."""
    return TestClient(create_app(settings or get_settings()))


def test_chat_page_points_the_widget_at_rasas_socket_on_the_same_host() -> None:
    settings = get_settings().model_copy(update={"rasa_port": 5123})
    r = client(settings).get("/", headers={"Host": "shop.local:8000"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<meta name="smartmkt-socket-url" content="http://shop.local:5123">' in r.text
    assert r.headers["cache-control"] == "no-cache"


def test_the_shops_token_endpoint_replaces_the_demo_picker() -> None:
    assert '<meta name="smartmkt-token-url" content="">' in client().get("/").text  # the demo
    settings = get_settings().model_copy(update={"chat_token_url": "/account/chat-token"})
    assert '<meta name="smartmkt-token-url" content="/account/chat-token">' in client(settings).get("/").text


def test_the_socket_url_can_be_set_and_is_escaped() -> None:
    settings = get_settings().model_copy(update={"chat_socket_url": 'https://chat.example"><script>'})
    r = client(settings).get("/")
    assert 'content="https://chat.example&quot;&gt;&lt;script&gt;"' in r.text
    assert "<script>" not in r.text.replace("<script src=", "")


@pytest.mark.parametrize("path", CONSOLE_PAGES)
def test_console_pages_are_served(path: str) -> None:
    r = client().get(path)
    assert r.status_code == 200 and "smartmkt console" in r.text
    assert "/static/console/common.js" in r.text


def test_console_pages_know_the_bots_intents_and_entities() -> None:
    r = client().get("/console/conversations/some-sender")
    intents = re.search(r'name="smartmkt-intents" content="([^"]+)"', r.text)
    entities = re.search(r'name="smartmkt-entities" content="([^"]+)"', r.text)
    assert intents and {"purchase", "ask_recommendation", "deny", "nlu_fallback"} <= set(
        intents[1].split(",")
    )
    assert entities and "category#exclude" in entities[1].split(",")


def test_console_root_goes_to_the_conversations() -> None:
    r = client().get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/conversations"


@pytest.mark.parametrize("name", sorted(VENDOR))
def test_npm_libraries_are_served_from_the_app(name: str) -> None:
    """Installed by `make setup` (npm ci, versions from package-lock.json), never a CDN."""
    assert (NODE_MODULES / VENDOR[name]).is_file(), "run make setup"
    r = client().get(f"/static/vendor/{name}")
    kind = "text/css" if name.endswith(".css") else "javascript"
    assert r.status_code == 200 and kind in r.headers["content-type"]
    assert len(r.content) > 10_000


def test_only_the_listed_npm_files_and_static_files_are_served() -> None:
    c = client()
    assert c.get("/static/vendor/package.json").status_code == 404
    assert c.get("/static/vendor/..%2F..%2Fapp.py").status_code == 404
    assert c.get("/static/..%2Frouters%2Fpages.py").status_code == 404
    assert c.get("/static/../routers/pages.py").status_code == 404
    assert c.get("/static/nothing-here.js").status_code == 404
    r = c.get("/static/chat.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]


def test_pages_are_ready_for_a_strict_csp() -> None:
    """Scripts only from files on this app: no inline script, no inline handler, no
    javascript: URL, nothing from another origin."""
    pages = list(PAGES_DIR.rglob("*.html"))
    # the chat, the console's layout and 7 views, the shop API's reference, the demo shop (its
    # widget's <script src="/widget.js"> goes in when it is served: a file of this app too)
    assert len(pages) == 11
    for page in pages:
        text = page.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert re.search(r'src="/static/', tag), (page.name, tag)
        assert not re.search(r"<script\b[^>]*>\s*[^<\s]", text), page.name  # nothing inside
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), page.name
        assert "javascript:" not in text.lower(), page.name
        assert not re.search(r'(src|href)="(https?:)?//', text), page.name
        assert "style=" not in text, page.name


def test_scripts_put_text_on_the_page_never_html() -> None:
    """User and bot text go in with textContent; nothing parses strings as HTML or code."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['\"]"
    )
    scripts = list(STATIC_DIR.rglob("*.js"))
    assert len(scripts) >= 7
    for script in scripts:
        assert not sinks.search(script.read_text()), script.name


def test_package_lock_pins_what_package_json_names() -> None:
    import json

    web = Path(PAGES_DIR).parent
    package = json.loads((web / "package.json").read_text())
    lock = json.loads((web / "package-lock.json").read_text())
    for name, version in package["dependencies"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)  # exact pins
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert package["dependencies"]["socket.io-client"].startswith("4.")


# --- the widget and the demo shop (issue 18) -----------------------------------------------------
def test_the_widget_is_one_gzipped_script_with_its_css_and_its_own_socketio() -> None:
    settings = get_settings().model_copy(update={"rasa_port": 5123})
    app = client(settings)
    r = app.get("/widget.js", headers={"Host": "shop-assistant.local:8000", "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["content-encoding"] == "gzip" and r.headers["vary"] == "Accept-Encoding"
    script = r.text  # decoded by the client
    assert '"socketUrl": "http://shop-assistant.local:5123"' in script
    assert ":host {" in script and ".launcher" in script  # base.css's variables on the shadow host
    assert "window.smartmktChat.io = window.io" in script and "delete window.io" in script
    order = [script.index(f"/* --- {name} --- */") for name in ("chat/dom.js", "widget/shell.js")]
    order += [script.index(f"/* --- {name} --- */") for name in ("chat/socket.js", "widget/start.js")]
    assert order == sorted(order)
    assert "demo's customer picker" not in script  # the page's own parts stay out
    again = app.get(
        "/widget.js", headers={"Host": "shop-assistant.local:8000", "If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304


def test_the_chat_endpoints_answer_cors_for_allowed_origins_only() -> None:
    settings = get_settings().model_copy(update={"allowed_origins": "https://shop.example"})
    app = client(settings)
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = app.options("/chat/session", headers={"Origin": "https://shop.example", **ask})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    refused = app.options("/chat/session", headers={"Origin": "https://elsewhere.example", **ask})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    answer = app.post("/chat/session", json={"token": "x"}, headers={"Origin": "https://shop.example"})
    assert (
        answer.status_code == 401 and answer.headers["access-control-allow-origin"] == "https://shop.example"
    )
    console = app.options("/console/api/me", headers={"Origin": "https://shop.example", **ask})
    assert "access-control-allow-origin" not in console.headers  # only the widget's routes


def test_the_demo_shop_lists_titles_with_the_widget_and_signs_its_shopper_in(demo_db: Path) -> None:
    settings = get_settings().model_copy(update={"database_url": f"sqlite:///{demo_db}", "demo_tokens": True})
    app = client(settings)
    front = app.get("/demo-shop")
    assert front.status_code == 200 and front.text.count('class="product"') == 24
    assert '<script src="/widget.js" data-title="Reel Corner assistant"></script>' in front.text  # a guest
    assert app.post("/demo-shop/token").status_code == 401
    signed = app.get("/demo-shop?as=42", follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/demo-shop"
    page = app.get("/demo-shop/products/1")
    assert "Signed in as demo customer 42." in page.text and 'data-token-url="/demo-shop/token"' in page.text
    token = app.post("/demo-shop/token").json()
    assert token["customer_ref"] == "42" and token["token"].count(".") == 2
    assert app.get("/demo-shop/products/999999").status_code == 404
    app.get("/demo-shop?as=")  # signs out
    assert "Browsing as a guest." in app.get("/demo-shop").text
    closed = client(settings.model_copy(update={"demo_tokens": False}))
    closed.cookies.set("reel_corner_shopper", "42", path="/demo-shop")
    assert closed.post("/demo-shop/token").status_code == 404


def test_the_demo_shop_escapes_what_the_catalog_says(demo_db: Path) -> None:
    from sqlalchemy import update

    from smartmkt.store.db import make_engine
    from smartmkt.store.models import Product

    engine = make_engine(f"sqlite:///{demo_db}")
    with engine.begin() as conn:
        conn.execute(
            update(Product).where(Product.id == 1).values(title='<img src=x onerror=alert(1)> "Toy"')
        )
    engine.dispose()
    settings = get_settings().model_copy(update={"database_url": f"sqlite:///{demo_db}"})
    page = client(settings).get("/demo-shop/products/1").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; &quot;Toy&quot;" in page
