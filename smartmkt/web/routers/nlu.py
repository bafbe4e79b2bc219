"""``POST /model/parse``: Rasa's NLU HTTP contract, answered by the fine-tuned MiniLM model.

Rasa (``nlu: url:`` in bot/endpoints.yml) posts ``{"text", "message_id", "token"}`` and expects
Rasa's parse JSON back: intent, intent_ranking, entities with start/end/value.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

router = APIRouter(tags=["nlu"])


class ParseRequest(BaseModel):
    text: str = Field(default="", description="The customer's message.")
    message_id: str | None = Field(default=None, description="Rasa sends the sender id here.")
    token: str | None = None


@router.post("/model/parse")
async def parse(body: ParseRequest, request: Request) -> dict[str, Any]:
    parser = request.app.state.smartmkt.parser()
    return await run_in_threadpool(parser.parse, body.text)  # type: ignore[no-any-return]
