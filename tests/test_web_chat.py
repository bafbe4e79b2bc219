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
    assert len(pages) == 10  # the chat, the console's layout and 7 views, the shop API's reference
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
