"""Serve the trained model: text in, Rasa's parse JSON out (what ``POST /model/parse`` returns)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smartmkt.nlu.encoding import decode_tags, encode_texts, to_rasa_entity
from smartmkt.nlu.model import JointIntentEntityModel
from smartmkt.wellformed import well_formed

FALLBACK_INTENT = "nlu_fallback"
# "/intent" or '/intent{"entity": "value"}': what Rasa buttons and quick replies send.
_SHORTCUT = re.compile(r"^/(?P<intent>[A-Za-z_][\w-]*)(?P<entities>\{.*\})?\s*$", re.DOTALL)


class NLUParser:
    """Loads a trained model folder once; ``parse`` is thread-safe and needs no framework."""

    def __init__(
        self, folder: Path, fallback_threshold: float = 0.55, max_chars: int = 2000, ranking_size: int = 10
    ) -> None:
        from transformers import AutoTokenizer

        self.folder = folder
        self.model = JointIntentEntityModel.load(folder)
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.config = self.model.config
        self.fallback_threshold = fallback_threshold
        self.max_chars = max_chars
        self.ranking_size = ranking_size
        self._lock = threading.Lock()

    @property
    def intents(self) -> list[str]:
        return list(self.config.intents)

    def parse(self, text: str) -> dict[str, Any]:
        return self.parse_batch([text])[0]

    def parse_batch(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Rasa parse results for ``texts`` (batched through the model in one pass)."""
        import torch

        results: dict[int, dict[str, Any]] = {}
        to_model: list[tuple[int, str]] = []
        for i, raw in enumerate(texts):
            text = well_formed(raw or "")[: self.max_chars]
            if shortcut := self._shortcut(text):
                results[i] = shortcut
            elif not text.strip() or not any(ch.isalnum() for ch in text):
                results[i] = self._fallback_only(text)
            else:
                to_model.append((i, text))
        if to_model:
            batch = [t for _, t in to_model]
            enc = encode_texts(self.tokenizer, batch, self.config.max_length)
            with self._lock, torch.inference_mode():
                intent_logits, tag_logits = self.model(enc["input_ids"], enc["attention_mask"])
            intent_probs = intent_logits.softmax(-1)
            tag_probs = tag_logits.softmax(-1)
            for row, (i, text) in enumerate(to_model):
                results[i] = self._result(
                    text, intent_probs[row].tolist(), tag_probs[row], enc["offset_mapping"][row].tolist()
                )
        return [results[i] for i in range(len(texts))]

    def _result(
        self, text: str, probs: list[float], tag_probs: Any, offsets: list[list[int]]
    ) -> dict[str, Any]:
        ranking = sorted(
            ({"name": name, "confidence": round(p, 6)} for name, p in zip(self.intents, probs, strict=True)),
            key=lambda r: -float(r["confidence"]),  # type: ignore[arg-type]
        )[: self.ranking_size]
        best, tag_ids = tag_probs.max(-1)
        entities = decode_tags(
            text, [(o[0], o[1]) for o in offsets], tag_ids.tolist(), best.tolist(), self.config.tags
        )
        top = ranking[0]
        intent = dict(top)
        if float(top["confidence"]) < self.fallback_threshold:  # type: ignore[arg-type]
            intent = {"name": FALLBACK_INTENT, "confidence": self.fallback_threshold}
            ranking = [intent, *ranking]
        return {
            "text": text,
            "intent": intent,
            "entities": [to_rasa_entity(text, e) for e in entities],
            "intent_ranking": ranking,
        }

    def _fallback_only(self, text: str) -> dict[str, Any]:
        """Nothing to read (empty, whitespace, only emoji/punctuation): ask to rephrase."""
        intent = {"name": FALLBACK_INTENT, "confidence": 1.0}
        return {"text": text, "intent": intent, "entities": [], "intent_ranking": [intent]}

    def _shortcut(self, text: str) -> dict[str, Any] | None:
        match = _SHORTCUT.match(text.strip())
        if not match or match.group("intent") not in {*self.intents, FALLBACK_INTENT}:
            return None
        entities: list[dict[str, Any]] = []
        if raw := match.group("entities"):
            try:
                values = json.loads(raw)
            except json.JSONDecodeError:
                return None
            if not isinstance(values, dict):
                return None
            entities = [
                {"entity": str(k), "value": v, "start": 0, "end": 0, "extractor": "shortcut"}
                for k, v in values.items()
                if isinstance(v, str | int | float | list)
            ]
        intent = {"name": match.group("intent"), "confidence": 1.0}
        return {"text": text, "intent": intent, "entities": entities, "intent_ranking": [intent]}
