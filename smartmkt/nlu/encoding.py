"""Text <-> token tensors, and BIO tags <-> character spans, shared by training and serving."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from smartmkt.nlu.data import EntitySpan, Example

IGNORE = -100


@dataclass(frozen=True)
class DecodedEntity:
    start: int
    end: int
    family: str
    confidence: float


def encode_texts(tokenizer: object, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    return tokenizer(  # type: ignore[operator,no-any-return]
        list(texts),
        padding=True,
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_tensors="pt",
    )


def tag_targets(
    offsets: torch.Tensor, attention: torch.Tensor, example: Example, tag_index: dict[str, int]
) -> list[int]:
    """BIO tag ids per token for one example; special and padding tokens are ignored."""
    targets: list[int] = []
    started: set[int] = set()
    for (start, end), active in zip(offsets.tolist(), attention.tolist(), strict=True):
        if not active or start == end:
            targets.append(IGNORE)
            continue
        tag = "O"
        for number, span in enumerate(example.entities):
            if start >= span.start and end <= span.end:
                prefix = "I" if number in started else "B"
                started.add(number)
                tag = f"{prefix}-{span.label}"
                break
        targets.append(tag_index.get(tag, tag_index["O"]))
    return targets


def decode_tags(
    text: str,
    offsets: Sequence[tuple[int, int]],
    tag_ids: Sequence[int],
    tag_probs: Sequence[float],
    tags: Sequence[str],
) -> list[DecodedEntity]:
    """Merge per-token BIO predictions into entity character spans, widened to whole words."""
    entities: list[DecodedEntity] = []
    current: tuple[int, int, str, list[float]] | None = None

    def close() -> None:
        if current is not None:
            start, end, family, probs = current
            start, end = _widen_to_words(text, start, end)
            entities.append(DecodedEntity(start, end, family, sum(probs) / len(probs)))

    for (start, end), tag_id, prob in zip(offsets, tag_ids, tag_probs, strict=True):
        if start == end:
            continue
        tag = tags[tag_id]
        if tag == "O":
            close()
            current = None
            continue
        prefix, family = tag.split("-", 1)
        continues = (
            current is not None
            and current[2] == family
            and (prefix == "I" or _inside_word(text, current[1], start))
        )
        if continues and current is not None:
            current = (current[0], end, family, [*current[3], prob])
        else:
            close()
            current = (start, end, family, [prob])
    close()
    return entities


def _inside_word(text: str, prev_end: int, start: int) -> bool:
    """A B- tag on a word piece glued to the previous token continues that entity."""
    return start == prev_end and start > 0 and text[start - 1].isalnum()


def _widen_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return start, end


def to_rasa_entity(text: str, entity: DecodedEntity) -> dict[str, object]:
    name, _, role = entity.family.partition("#")
    result: dict[str, object] = {
        "entity": name,
        "start": entity.start,
        "end": entity.end,
        "value": text[entity.start : entity.end],
        "confidence_entity": round(entity.confidence, 4),
        "extractor": "SmartmktTransformerNLU",
    }
    if role:
        result["role"] = role
        result["confidence_role"] = round(entity.confidence, 4)
    return result


def span_families(examples: Sequence[Example]) -> set[str]:
    return {span.label for ex in examples for span in ex.entities}


__all__ = ["EntitySpan", "decode_tags", "encode_texts", "span_families", "tag_targets"]
