"""NLU evaluation on any Rasa-format test file, for our model and for Rasa's DIET baseline.

An entity counts as correct when its type (entity name, plus role when one is annotated) and its
text match, case-insensitive. Precision/recall are micro-averaged over all test messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from smartmkt.nlu.data import Example

DIET_RUNNER = Path(__file__).with_name("diet_runner.py")
METRIC_KEYS = ("intent_accuracy", "intent_macro_f1", "entity_precision", "entity_recall", "entity_f1", "n")
CLASSIFICATION_KEYS = (
    "intent_accuracy",
    "intent_precision",
    "intent_recall",
    "intent_macro_f1",
    "intent_auc",
)


def _entity_key(entity: dict[str, Any] | Any) -> tuple[str, str]:
    if isinstance(entity, dict):
        name, role, text = entity["entity"], entity.get("role"), str(entity.get("value", ""))
    else:
        name, role, text = entity.entity, entity.role, entity.value
    label = f"{name}#{role}" if role else name
    return label, " ".join(text.lower().split())


def score(examples: Sequence[Example], predictions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Intent accuracy and macro-F1, entity precision/recall/F1, n."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    gold_intents = [ex.intent for ex in examples]
    pred_intents = [p["intent"]["name"] for p in predictions]
    true_pos = predicted = expected = 0
    for ex, pred in zip(examples, predictions, strict=True):
        gold = Counter(_entity_key(e) for e in ex.entities)
        found = Counter(_entity_key(e) for e in pred.get("entities", []))
        true_pos += sum((gold & found).values())
        predicted += sum(found.values())
        expected += sum(gold.values())
    precision = true_pos / predicted if predicted else 0.0
    recall = true_pos / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    labels = sorted(set(gold_intents))
    macro = {"labels": labels, "average": "macro", "zero_division": 0}
    return {
        "intent_accuracy": round(
            sum(g == p for g, p in zip(gold_intents, pred_intents, strict=True)) / len(examples), 4
        ),
        "intent_precision": round(float(precision_score(gold_intents, pred_intents, **macro)), 4),  # type: ignore[arg-type]
        "intent_recall": round(float(recall_score(gold_intents, pred_intents, **macro)), 4),  # type: ignore[arg-type]
        "intent_macro_f1": round(float(f1_score(gold_intents, pred_intents, **macro)), 4),  # type: ignore[arg-type]
        "intent_auc": intent_auc(gold_intents, predictions),
        "entity_precision": round(precision, 4),
        "entity_recall": round(recall, 4),
        "entity_f1": round(f1, 4),
        "n": len(examples),
    }


def intent_confidences(label: str, predictions: Sequence[dict[str, Any]]) -> list[float]:
    """Each message's confidence for ``label`` (0 when it is not in the message's ranking)."""
    return [
        next((float(r["confidence"]) for r in p.get("intent_ranking", []) if r["name"] == label), 0.0)
        for p in predictions
    ]


def intent_auc(gold: Sequence[str], predictions: Sequence[dict[str, Any]]) -> float:
    """Macro one-vs-rest ROC AUC of the intent confidences, over intents with positives and
    negatives in the test set."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for label in sorted(set(gold)):
        truth = [g == label for g in gold]
        if 0 < sum(truth) < len(truth):
            aucs.append(roc_auc_score(truth, intent_confidences(label, predictions)))
    return round(float(np.mean(aucs)), 4) if aucs else 0.5


def errors(examples: Sequence[Example], predictions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The misclassified messages, for people improving the training data."""
    out = []
    for ex, pred in zip(examples, predictions, strict=True):
        gold = sorted(_entity_key(e) for e in ex.entities)
        found = sorted(_entity_key(e) for e in pred.get("entities", []))
        if pred["intent"]["name"] != ex.intent or gold != found:
            out.append(
                {
                    "text": ex.text,
                    "intent": ex.intent,
                    "predicted": pred["intent"]["name"],
                    "entities": gold,
                    "predicted_entities": found,
                }
            )
    return out


def evaluate_parser(
    parse_batch: Callable[[list[str]], list[dict[str, Any]]],
    examples: Sequence[Example],
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    texts = [ex.text for ex in examples]
    preds: list[dict[str, Any]] = []
    for start in range(0, len(texts), batch_size):
        preds.extend(parse_batch(texts[start : start + batch_size]))
    return preds


def train_diet(bot_python: Path, bot_dir: Path, output: Path) -> Path:
    """Train Rasa's DIET pipeline (bot/config.yml) on bot/data/nlu; returns the model archive."""
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(bot_python),
            "-m",
            "rasa",
            "train",
            "nlu",
            "--config",
            str(bot_dir / "config.yml"),
            "--nlu",
            str(bot_dir / "data" / "nlu"),
            "--out",
            str(output),
            "--fixed-model-name",
            "diet",
        ],
        check=True,
        cwd=bot_dir,
        stdout=sys.stderr,  # keep stdout for the JSON report
    )
    return output / "diet.tar.gz"


def parse_with_diet(bot_python: Path, model: Path, texts: Sequence[str]) -> list[dict[str, Any]]:
    """Parse ``texts`` with a trained Rasa model, in the bot environment (Rasa's own process)."""
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps(list(texts)))
        subprocess.run(
            [str(bot_python), str(DIET_RUNNER), str(model), str(inp), str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return json.loads(out.read_text())  # type: ignore[no-any-return]
