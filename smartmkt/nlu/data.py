"""Read Rasa-format NLU YAML (inline ``[text](entity)`` / ``[text]{"entity": .., "role": ..}``).

Any Rasa 3 NLU file works, so the same files train our model and Rasa's DIET baseline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<simple>[^)]+)\)|(?P<json>\{[^}]+\}))")


@dataclass(frozen=True)
class EntitySpan:
    start: int
    end: int
    entity: str
    value: str
    role: str | None = None

    @property
    def label(self) -> str:
        """The tag family: ``category`` or ``category#exclude`` when a role is set."""
        return f"{self.entity}#{self.role}" if self.role else self.entity


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = field(default_factory=tuple)


class NLUDataError(ValueError):
    """A training/test file that is not valid Rasa NLU YAML."""


def parse_annotated(line: str, intent: str) -> Example:
    """Turn ``recommend a [comedy](category)`` into plain text plus character spans."""
    text_parts: list[str] = []
    entities: list[EntitySpan] = []
    cursor = 0
    length = 0
    for match in _ANNOTATION.finditer(line):
        before = line[cursor : match.start()]
        text_parts.append(before)
        length += len(before)
        value_text = match.group("text")
        if match.group("simple"):
            spec = match.group("simple").split(":", 1)[0]  # [x](entity:synonym) -> entity
            entity, role = spec.strip(), None
        else:
            try:
                data = json.loads(match.group("json"))
            except json.JSONDecodeError as exc:
                raise NLUDataError(f"bad entity annotation in {line!r}: {exc}") from exc
            entity, role = data["entity"], data.get("role")
        entities.append(EntitySpan(length, length + len(value_text), entity, value_text, role))
        text_parts.append(value_text)
        length += len(value_text)
        cursor = match.end()
    text_parts.append(line[cursor:])
    return Example("".join(text_parts), intent, tuple(entities))


def load_nlu_file(path: Path) -> list[Example]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise NLUDataError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise NLUDataError(f"{path}: expected a mapping with an 'nlu' key")
    examples: list[Example] = []
    for block in document.get("nlu") or []:
        intent = block.get("intent")
        if not intent:
            continue  # synonyms, regexes and lookups carry no labelled examples
        for raw in str(block.get("examples", "")).splitlines():
            raw = raw.strip()
            if raw.startswith("- "):
                raw = raw[2:].strip()
            elif raw.startswith("-"):
                raw = raw[1:].strip()
            else:
                continue
            if raw:
                examples.append(parse_annotated(raw, intent))
    return examples


def load_nlu(path: Path) -> list[Example]:
    """Examples from one file or every ``*.yml`` under a folder (sorted, so order is stable)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.yml") if p.is_file())
    elif path.exists():
        files = [path]
    else:
        raise NLUDataError(f"{path}: no such file or folder")
    examples = [ex for f in files for ex in load_nlu_file(f)]
    if not examples:
        raise NLUDataError(f"{path}: no intent examples found")
    return examples
