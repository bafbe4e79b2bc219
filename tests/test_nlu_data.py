"""The training data itself: intents and entities exactly as specified, enough variety, and a
held-out test file that shares no message with training."""

import re
from collections import Counter
from pathlib import Path

import pytest

from smartmkt.nlu.data import EntitySpan, NLUDataError, load_nlu, parse_annotated

ROOT = Path(__file__).resolve().parent.parent
INTENTS = {
    "greet",
    "goodbye",
    "thank_you",
    "affirm",
    "deny",
    "bot_challenge",
    "ask_capabilities",
    "ask_recommendation",
    "search_product",
    "inform_preference",
    "ask_price",
    "ask_offers",
    "purchase",
    "ask_order_history",
    "opt_out_marketing",
    "delete_my_data",
    "human_handoff",
    "out_of_scope",
}
ENTITIES = {"category", "product", "price", "year", "recipient"}


def _key(text: str) -> str:
    return re.sub(r"[^\w\s]", "", text.lower()).strip()


def test_annotations_become_spans() -> None:
    ex = parse_annotated(
        "a [Comedy](category) for [my kids](recipient) but no "
        '[horror]{"entity": "category", "role": "exclude"}',
        "ask_recommendation",
    )
    assert ex.text == "a Comedy for my kids but no horror"
    assert ex.entities == (
        EntitySpan(2, 8, "category", "Comedy"),
        EntitySpan(13, 20, "recipient", "my kids"),
        EntitySpan(28, 34, "category", "horror", "exclude"),
    )
    for span in ex.entities:
        assert ex.text[span.start : span.end] == span.value


def test_training_data_covers_exactly_the_specified_intents_and_entities() -> None:
    examples = load_nlu(ROOT / "bot" / "data" / "nlu")
    counts = Counter(ex.intent for ex in examples)
    assert set(counts) == INTENTS
    assert min(counts.values()) >= 40, counts
    assert {s.entity for ex in examples for s in ex.entities} == ENTITIES
    assert sum(1 for ex in examples for s in ex.entities if s.role == "exclude") >= 20


def test_held_out_test_file_is_disjoint_from_training() -> None:
    """No test message, nor a near-copy of one (80% character similarity), is trained on."""
    from rapidfuzz import fuzz, process

    train = sorted({_key(ex.text) for ex in load_nlu(ROOT / "bot" / "data" / "nlu")})
    test = load_nlu(ROOT / "bot" / "tests" / "nlu_test.yml")
    assert {ex.intent for ex in test} == INTENTS
    near = [
        (ex.text, match[0])
        for ex in test
        if (match := process.extractOne(_key(ex.text), train, scorer=fuzz.ratio, score_cutoff=80))
    ]
    assert not near


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu: [unclosed")
    with pytest.raises(NLUDataError, match="not valid YAML"):
        load_nlu(bad)
    empty = tmp_path / "empty.yml"
    empty.write_text('version: "3.1"\nnlu: []\n')
    with pytest.raises(NLUDataError, match="no intent examples"):
        load_nlu(empty)
    with pytest.raises(NLUDataError, match="no such file"):
        load_nlu(tmp_path / "missing.yml")
