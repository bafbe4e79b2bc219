"""NLU review from the console: mark a customer message's right intent and entities.

POST /console/api/nlu-reviews {"event_id", "text", "intent", "entities": [{"entity", "value",
     "start", "end", "role"?}]}  -> 201 {"id"}; 400 when the intent or an entity is not the
     bot's, a span is outside the text or overlaps another, or the event is no customer message
GET  /console/api/nlu-reviews   -> {"items": [...]} newest first
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from smartmkt.console import reviews
from smartmkt.web.console_access import Backend, LoggedIn

router = APIRouter(prefix="/console/api", tags=["console"])


class ReviewedEntity(BaseModel):
    entity: str = Field(max_length=255)
    value: str | None = Field(default=None, max_length=200)
    start: int
    end: int
    role: str | None = Field(default=None, max_length=255)


class ReviewIn(BaseModel):
    event_id: int
    text: str = Field(max_length=reviews.MAX_TEXT)
    intent: str = Field(max_length=255)
    entities: list[ReviewedEntity] = Field(default_factory=list, max_length=reviews.MAX_ENTITIES)


@router.post("/nlu-reviews", status_code=201)
def create_review(body: ReviewIn, session: LoggedIn, console: Backend) -> dict[str, Any]:
    try:
        review_id = reviews.save(
            console.store,
            console.tracker,
            console.settings.bot_dir,
            body.event_id,
            body.text,
            body.intent,
            [e.model_dump() for e in body.entities],
            session.user.id,
        )
    except reviews.ReviewError as exc:
        raise HTTPException(400, str(exc)) from None
    return {"id": review_id}


@router.get("/nlu-reviews")
def list_reviews(
    _session: LoggedIn,
    console: Backend,
    response: Response,
    limit: int = Query(default=500, ge=1, le=5000),
) -> dict[str, Any]:
    response.headers["Cache-Control"] = "no-store"
    return {"items": [r.as_dict() for r in reviews.reviews(console.store, limit)]}
