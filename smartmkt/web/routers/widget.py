"""The chat widget a shop puts on its own pages: ``<script src="https://SMARTMKT/widget.js"
data-...></script>`` (the data attributes: smartmkt/web/static/widget/shell.js).

``GET /widget.js`` is one script: where Rasa's socket.io listens (as the chat page's <meta> tag
says it), the widget's CSS (base.css and chat.css with the page's variables on the shadow host,
then widget/widget.css; sizes in em of the widget's own font, not rem of the page's),
socket.io-client (kept off the shop's own ``window.io``, and out of reach of an AMD or CommonJS
loader on the shop's page), then the chat's parts in the page's order with the widget's shell
and start in place of the page's. One request, gzipped when the browser accepts it, revalidated
on each load (an ETag: a deploy shows at once).

The files are read once per process; the bundle is built once per socket URL.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smartmkt.web.routers.pages import NODE_MODULES, STATIC_DIR, VENDOR, socket_url

router = APIRouter(tags=["pages"], include_in_schema=False)

# The chat's parts (static/chat/) in the order pages/chat.html loads them, with the widget's shell
# for page.js and its start for customer.js and chat.js.
SCRIPTS = (
    "chat/dom.js",
    "widget/shell.js",
    "chat/storage.js",
    "chat/identity.js",
    "chat/offers.js",
    "chat/cards.js",
    "chat/render.js",
    "chat/sound.js",
    "chat/socket.js",
    "chat/voice.js",
    "chat/composer.js",
    "widget/start.js",
)
STYLES = ("base.css", "chat.css", "widget/widget.css")


@dataclass(frozen=True)
class Bundle:
    script: bytes
    gzipped: bytes
    etag: str


def widget_css() -> str:
    """The page's styles with its variables on the widget's shadow host, then the widget's own.
    Every ``rem`` becomes ``em``: a rem is the shop page's root font size (a page may set it to
    40 px), an em the widget's own 16 px (its host's font, widget.css)."""
    css = [(STATIC_DIR / name).read_text(encoding="utf-8") for name in STYLES]
    css[0] = css[0].replace(":root", ":host")
    return re.sub(r"(?<=[0-9.])rem\b", "em", "\n".join(css))


def socketio_client() -> str:
    """socket.io-client's browser bundle, run so that it sets ``window.io`` (not an AMD or
    CommonJS module), taken into ``window.smartmktChat.io`` and the shop's ``window.io`` put back."""
    library = (NODE_MODULES / VENDOR["socket.io.min.js"]).read_text(encoding="utf-8")
    return (
        "(function () { var prior = window.io;\n"
        f"(function (define, exports, module) {{\n{library}\n}}).call(window);\n"
        "window.smartmktChat.io = window.io;\n"
        "if (prior === undefined) { delete window.io; } else { window.io = prior; }\n"
        "})();\n"
    )


def parts(socket: str, with_socketio: bool = True) -> list[str]:
    """The bundle's pieces in order (without socket.io-client: what the widget itself weighs)."""
    settings = json.dumps({"socketUrl": socket, "css": widget_css()})
    return [
        "/* smartmkt chat widget: smartmkt/web/routers/widget.py */",
        f"window.smartmktChat = {settings};",
        *([socketio_client()] if with_socketio else []),
        *(f"/* --- {name} --- */\n" + (STATIC_DIR / name).read_text(encoding="utf-8") for name in SCRIPTS),
    ]


def gzip_kb(socket: str, with_socketio: bool) -> float:
    """The bundle's gzipped size in kB (1024 bytes), as GET /widget.js sends it."""
    script = "\n".join(parts(socket, with_socketio)).encode("utf-8")
    return round(len(gzip.compress(script, 9, mtime=0)) / 1024, 1)


@lru_cache(maxsize=8)
def bundle(socket: str) -> Bundle:
    script = "\n".join(parts(socket)).encode("utf-8")
    return Bundle(script, gzip.compress(script, 9, mtime=0), f'"{hashlib.sha256(script).hexdigest()[:32]}"')


@router.get("/widget.js")
async def widget_script(request: Request) -> Response:
    made = bundle(socket_url(request.app.state.smartmkt.settings, request))
    headers = {"Cache-Control": "no-cache", "ETag": made.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == made.etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(made.gzipped, media_type="text/javascript", headers=headers)
    return Response(made.script, media_type="text/javascript", headers=headers)
