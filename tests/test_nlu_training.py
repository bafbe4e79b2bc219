"""Training runs end to end on a tiny data set (real MiniLM weights, 3 epochs) and the saved
folder loads and parses; the served model is checked separately (test_nlu_served.py)."""

from pathlib import Path

from smartmkt.nlu.augment import augment
from smartmkt.nlu.data import parse_annotated
from smartmkt.nlu.parser import NLUParser
from smartmkt.nlu.train import TrainConfig, train_nlu

LINES = {
    "greet": ["hi", "hello there", "hey", "good morning", "hiya"],
    "ask_price": [
        "how much is [Fargo](product)",
        "price of [Heat](product)?",
        "what does [Toy Story](product) cost",
        "how much for [Speed](product)",
    ],
}


def test_tiny_training_run_saves_a_loadable_model(tmp_path: Path) -> None:
    examples = [parse_annotated(line, intent) for intent, lines in LINES.items() for line in lines]
    model = train_nlu(
        examples,
        tmp_path / "m",
        titles=["Twister", "Casino"],
        config=TrainConfig(epochs=3, batch_size=8, augment_copies=1),
    )
    assert model.config.intents == ["ask_price", "greet"]
    assert {"B-product", "I-product"} <= set(model.config.tags)
    parser = NLUParser(tmp_path / "m", fallback_threshold=0.0)
    result = parser.parse("hello")
    assert {r["name"] for r in result["intent_ranking"]} == {"ask_price", "greet"}
    assert abs(sum(r["confidence"] for r in result["intent_ranking"]) - 1.0) < 1e-3


def test_augmentation_swaps_values_and_keeps_spans_aligned() -> None:
    ex = parse_annotated("how much is [Fargo](product) in [comedy](category)", "ask_price")
    out = augment([ex], titles=["Twister", "Casino", "Heat"], copies=5, seed=3)
    assert out[0] == ex and len(out) == 6
    for variant in out[1:]:
        assert variant.intent == "ask_price"
        for span in variant.entities:
            assert variant.text[span.start : span.end] == span.value
        assert variant.entities[0].value.lower() in {"twister", "casino", "heat"}
        assert "movie" not in variant.entities[1].value
