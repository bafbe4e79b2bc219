"""The web faces the app serves itself: the customer chat at ``GET /`` and the marketer console
pages under ``/console``, their scripts and styles (``/static``) and the two npm libraries they
use (``/static/vendor``: socket.io-client, Chart.js, and Swagger UI for /api/docs; installed by
``make setup`` with ``npm ci``, never fetched from a CDN).

The pages are static HTML files in ``smartmkt/web/pages`` (the console's views are fragments
in ``pages/console/`` put into one layout, ``pages/console.html``). The few values a page needs from the
server (where Rasa's socket.io channel listens, the intents for the console's filters) go into
``<meta>`` tags, HTML-escaped. Every script is a file under /static: no inline scripts, no inline
event handlers, so a strict Content-Security-Policy can be added without touching the pages. The
console pages hold no data: their scripts read it from the console JSON API (``/console/api``)
with the browser's session cookie.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from smartmkt.settings import Settings

router = APIRouter(tags=["pages"], include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent
PAGES_DIR = WEB_DIR / "pages"
STATIC_DIR = WEB_DIR / "static"
NODE_MODULES = WEB_DIR / "node_modules"  # smartmkt/web/package.json, `npm ci` in make setup
# The only files served from node_modules: the libraries' own prebuilt browser bundles.
VENDOR = {
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "swagger-ui-bundle.js": "swagger-ui-dist/swagger-ui-bundle.js",
    "swagger-ui.css": "swagger-ui-dist/swagger-ui.css",
}
ENTITIES = ("category", "category#exclude", "product", "price", "year", "recipient")
# Revalidate on every load (ETag/Last-Modified make that a 304): a deploy shows at once.
NO_STALE = {"Cache-Control": "no-cache"}


def socket_url(settings: Settings, request: Request) -> str:
    """Where browsers reach Rasa's socket.io channel: SMARTMKT_CHAT_SOCKET_URL, or Rasa's port on
    the host name this page was loaded from (so it works on localhost, 127.0.0.1 or a LAN name)."""
    if settings.chat_socket_url:
        return settings.chat_socket_url
    host = request.url.hostname or settings.host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{request.url.scheme}://{host}:{settings.rasa_port}"


@lru_cache(maxsize=4)
def domain_intents(bot_dir: Path) -> tuple[str, ...]:
    """The bot's intents (bot/domain.yml) and the NLU's fallback, for the console's pickers."""
    domain = yaml.safe_load((bot_dir / "domain.yml").read_text())
    return (*(str(i) for i in domain.get("intents", [])), "nlu_fallback")


def fill(text: str, **values: str) -> HTMLResponse:
    """``text`` with each ``{{name}}`` replaced by the escaped value (safe in an attribute)."""
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", html.escape(value, quote=True))
    return HTMLResponse(text, headers=NO_STALE)


def _file(base: Path, relative: str) -> FileResponse:
    """A file under ``base`` only: no ``..`` out of it, no absolute path, no symlink leading out,
    no NUL or control character (a NUL made ``resolve`` raise: a 500 before), else 404."""
    if not relative or any(ord(ch) < 32 for ch in relative) or relative.startswith(("/", "\\")):
        raise HTTPException(404, "not found")
    try:
        path = (base / relative).resolve()
        inside = path.is_relative_to(base.resolve()) and path.is_file()
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise HTTPException(404, "not found")
    return FileResponse(path, headers=NO_STALE)


@router.get("/", response_class=HTMLResponse)
async def chat_page(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.smartmkt.settings
    return fill(
        (PAGES_DIR / "chat.html").read_text(encoding="utf-8"),
        socket_url=socket_url(settings, request),
        token_url=settings.chat_token_url,
    )


@router.get("/static/vendor/{name}")
async def vendor_file(name: str) -> Any:
    if name not in VENDOR:
        raise HTTPException(404, "not found")
    path = NODE_MODULES / VENDOR[name]
    if not path.is_file():
        return JSONResponse(
            {"error": "web assets not installed", "reason": f"{path} is missing: run `make setup` (npm ci)"},
            status_code=503,
        )
    return FileResponse(path, headers=NO_STALE)


@router.get("/static/{path:path}")
async def static_file(path: str) -> FileResponse:
    return _file(STATIC_DIR, path)


# --- the marketer console: one layout, one fragment and one script per view -------------------
@dataclass(frozen=True)
class ConsolePage:
    name: str  # pages/console/<name>.html inside the layout, static/console/<name>.js
    title: str
    vendor: tuple[str, ...] = ()  # npm libraries it needs, before its own script


CONSOLE_PAGES = {
    "/console/login": ConsolePage("login", "Sign in"),
    "/console/conversations": ConsolePage("conversations", "Conversations"),
    "/console/conversations/{sender_id:path}": ConsolePage("transcript", "Transcript"),
    "/console/dashboard": ConsolePage("dashboard", "Dashboard", ("chart.umd.min.js",)),
    "/console/nlu-reviews": ConsolePage("reviews", "NLU reviews"),
    "/console/shop": ConsolePage("shop", "Shop"),
    "/console/users": ConsolePage("users", "Users"),
}


def console_html(page: ConsolePage) -> str:
    """The layout with the page's fragment and scripts (files of this package: trusted HTML)."""
    scripts = [
        *(f"/static/vendor/{name}" for name in page.vendor),
        "/static/console/common.js",
        f"/static/console/{page.name}.js",
    ]
    layout = (PAGES_DIR / "console.html").read_text(encoding="utf-8")
    return layout.replace(
        "[[scripts]]", "\n".join(f'  <script src="{src}" defer></script>' for src in scripts)
    ).replace("[[main]]", (PAGES_DIR / "console" / f"{page.name}.html").read_text(encoding="utf-8"))


def _console_endpoint(page: ConsolePage) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def endpoint(request: Request) -> HTMLResponse:
        settings: Settings = request.app.state.smartmkt.settings
        return fill(
            console_html(page),
            title=page.title,
            intents=",".join(domain_intents(settings.bot_dir)),
            entities=",".join(ENTITIES),
        )

    return endpoint


for _path, _page in CONSOLE_PAGES.items():
    router.add_api_route(_path, _console_endpoint(_page), methods=["GET"], response_class=HTMLResponse)


@router.get("/console")
async def console_home() -> RedirectResponse:
    return RedirectResponse("/console/conversations", status_code=303)
