"""The console's conversation review and dashboard (docs/console-api.md has the contract).

  GET /console/api/conversations?from&to&channel&intent&offer&low_confidence&fallback&customer&q
      &limit&cursor                        -> {"items": [...], "next_cursor": str | null}
  GET /console/api/conversations.csv?<the same filters>   -> text/csv, every matching row
  GET /console/api/conversations/{sender_id}              -> the transcript, or 404
  GET /console/api/dashboard?from&to                      -> the figures

Each request first folds Rasa's new events into the conversation index (smartmkt.console.index).
A filter, limit or cursor the API does not understand is a 400 that says which.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import StreamingResponse

from smartmkt.console import conversations as conv
from smartmkt.console.dashboard import dashboard as dashboard_figures
from smartmkt.console.dashboard import date_range
from smartmkt.web.console_access import Backend, LoggedIn

router = APIRouter(prefix="/console/api", tags=["console"])

CSV_COLUMNS = (
    "sender_id",
    "customer_ref",
    "started_at",
    "last_event_at",
    "turns",
    "voice_turns",
    "intents",
    "min_confidence",
    "fallback",
    "offers_made",
    "offers_accepted",
    "offers_declined",
    "first_message",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets would run as a formula


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and all known."""
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise HTTPException(400, f"unknown parameter {key[:40]!r}")
        if key in params:
            raise HTTPException(400, f"{key} is given more than once")
        params[key] = value
    return params


def _filter(params: dict[str, str]) -> conv.ConversationFilter:
    try:
        return conv.ConversationFilter.parse({k: v for k, v in params.items() if k in conv.FILTER_PARAMS})
    except conv.FilterError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/conversations")
def conversations(
    request: Request, _session: LoggedIn, console: Backend, response: Response
) -> dict[str, Any]:
    params = _params(request, (*conv.FILTER_PARAMS, "limit", "cursor"))
    where = _filter(params)
    try:
        limit = conv.parse_limit(params.get("limit"))
        console.catch_up()
        page = conv.page(
            console.store, where, console.settings.console_low_confidence, limit, params.get("cursor") or None
        )
    except conv.FilterError as exc:
        raise HTTPException(400, str(exc)) from None
    response.headers["Cache-Control"] = "no-store"
    return {"items": page.items, "next_cursor": page.next_cursor}


def csv_cell(value: Any) -> str:
    """A cell as text; one a spreadsheet would read as a formula is quoted with a leading '."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_lines(pages: Iterator[conv.Page]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for current in pages:
        for item in current.items:
            writer.writerow([csv_cell(item[c]) for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


@router.get("/conversations.csv")
def conversations_csv(request: Request, _session: LoggedIn, console: Backend) -> StreamingResponse:
    where = _filter(_params(request, conv.FILTER_PARAMS))
    console.catch_up()
    pages = conv.every_page(console.store, where, console.settings.console_low_confidence)
    return StreamingResponse(
        _csv_lines(pages),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="conversations.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/conversations/{sender_id:path}")
def conversation(sender_id: str, _session: LoggedIn, console: Backend, response: Response) -> dict[str, Any]:
    console.catch_up()
    found = conv.transcript(console.store, console.tracker, sender_id)
    if found is None:
        raise HTTPException(404, "no such conversation")
    response.headers["Cache-Control"] = "no-store"
    return found


@router.get("/dashboard")
def dashboard(request: Request, _session: LoggedIn, console: Backend, response: Response) -> dict[str, Any]:
    try:
        start, end = date_range(*conv.parse_range(_params(request, ("from", "to"))))
    except conv.FilterError as exc:
        raise HTTPException(400, str(exc)) from None
    console.catch_up()
    response.headers["Cache-Control"] = "no-store"
    settings = console.settings
    return dashboard_figures(console.store, start, end, settings.models_dir, settings.gate_min_positives)
