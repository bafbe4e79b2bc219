"""``smartmkt eval``: the served models on held-out data (every model, or the NLU model on any
Rasa NLU test file)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console, status
from smartmkt.cli.shared import JsonFlag, fail, migrated_store
from smartmkt.settings import get_settings

eval_app = typer.Typer(
    help="Evaluate the served models on held-out data (`smartmkt eval` alone: every model).",
    invoke_without_command=True,
)
EVAL_FIGURES = {
    "classification": ("accuracy", "precision", "recall", "f1", "auc"),
    "ranking": ("recall@10", "ndcg@10", "coverage@10"),
}
NLU_AS_CLASSIFIER = {
    "accuracy": "intent_accuracy",
    "precision": "intent_precision",
    "recall": "intent_recall",
    "f1": "intent_macro_f1",
    "auc": "intent_auc",
}


@eval_app.callback()
def eval_all(
    ctx: typer.Context,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="nlu, purchase or recommender (repeatable).")
    ] = None,
    reports: Annotated[Path, typer.Option("--reports", help="Where the PNG plots go.")] = Path("reports"),
    as_json: JsonFlag = False,
) -> None:
    """Every served model on its held-out data: classification and ranking figures, a PNG each."""
    if ctx.invoked_subcommand is not None:
        return
    from smartmkt.lifecycle import evaluation
    from smartmkt.lifecycle.heldout import NoPositives

    kinds = tuple(model or evaluation.EVALUATED_KINDS)
    unknown = [k for k in kinds if k not in evaluation.EVALUATED_KINDS]
    if unknown:
        fail(f"unknown model {', '.join(unknown)}; choose from {', '.join(evaluation.EVALUATED_KINDS)}")
    try:
        with status("evaluating ...") as spinner:
            results = evaluation.evaluate_served(
                get_settings(), migrated_store(), kinds, reports, progress=lambda m: spinner.update(m)
            )
    except (FileNotFoundError, NoPositives) as exc:
        fail(str(exc))
    least = get_settings().gate_min_positives
    if as_json:
        print(json.dumps(evaluation.as_json(results, least), indent=2))
        return
    for task, figures in EVAL_FIGURES.items():
        table = Table("model", *figures, "positives", "held-out data", title=f"{task} (held-out)")
        for kind, r in results.items():
            if r.task == task:
                names = [NLU_AS_CLASSIFIER[f] if kind == "nlu" else f for f in figures]
                shown = (str(r.metrics.get(n, "")) for n in names)
                table.add_row(kind, *shown, str(r.positives), r.heldout)
        if table.row_count:
            console.print(table)
    for r in results.values():
        warning = r.warning(least)
        if warning:
            console.print(f"[yellow]warning:[/] {r.kind}: {warning}")
        console.print(f"{r.kind}: {r.plot}")


@eval_app.command("nlu")
def eval_nlu_cmd(
    test_file: Annotated[Path, typer.Option("--test-file", help="Rasa-format NLU YAML.")],
    baseline: Annotated[
        str | None, typer.Option("--baseline", help="'diet': also train and score Rasa DIET.")
    ] = None,
    as_json: JsonFlag = False,
    show_errors: Annotated[bool, typer.Option("--errors", help="List misparsed messages.")] = False,
) -> None:
    """Score the served NLU model (and optionally Rasa's DIET) on any Rasa NLU test file."""
    from smartmkt.nlu.data import NLUDataError, load_nlu
    from smartmkt.nlu.evaluate import (
        METRIC_KEYS,
        errors,
        evaluate_parser,
        parse_with_diet,
        score,
        train_diet,
    )
    from smartmkt.nlu.parser import NLUParser
    from smartmkt.store import model_registry

    settings = get_settings()
    if baseline not in (None, "diet"):
        fail(f"unknown baseline {baseline!r}; the only baseline is 'diet'")
    try:
        examples = load_nlu(test_file)
    except NLUDataError as exc:
        fail(str(exc))
    try:
        parser = NLUParser(
            model_registry.served_path(settings.models_dir, "nlu"),
            settings.nlu_fallback_threshold,
            settings.nlu_max_chars,
        )
    except FileNotFoundError as exc:
        fail(str(exc))
    predictions = evaluate_parser(parser.parse_batch, examples)
    report: dict[str, object] = {"model": score(examples, predictions)}
    if baseline == "diet":
        from smartmkt.lifecycle.kinds import bot_python

        diet_model = train_diet(bot_python(settings), settings.bot_dir, settings.models_dir / "diet")
        diet_predictions = parse_with_diet(bot_python(settings), diet_model, [e.text for e in examples])
        report["diet"] = score(examples, diet_predictions)
    if show_errors:
        report["errors"] = errors(examples, predictions)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("model", "intent acc", "intent macro-F1", "entity P", "entity R", "entity F1", "n")
    for name, m in report.items():
        if name != "errors":
            m = dict(m)  # type: ignore[call-overload]
            table.add_row(
                name,
                *(str(m[k]) for k in METRIC_KEYS),
            )
    console.print(table)
    for e in report.get("errors", []):  # type: ignore[attr-defined]
        console.print(e)
