"""``smartmkt``: set up the store, train, evaluate, recommend, run and benchmark."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from smartmkt.cli.console_commands import bench_console, console_app, nlu_app
from smartmkt.cli.privacy_commands import customer_app, privacy_app, retention_app
from smartmkt.cli.progress import console, counting_bars, progress_bars
from smartmkt.settings import get_settings

if TYPE_CHECKING:
    from smartmkt.lifecycle.training import TrainResult

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(
    help="smartmkt: conversational marketing assistant.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The SQL store.", no_args_is_help=True)
data_app = typer.Typer(help="Data in the store.", no_args_is_help=True)
train_app = typer.Typer(help="Train models (skips what is current unless --force).", no_args_is_help=True)
eval_app = typer.Typer(
    help="Evaluate the served models on held-out data (`smartmkt eval` alone: every model).",
    invoke_without_command=True,
)
bench_app = typer.Typer(help="Benchmarks that print JSON figures.", no_args_is_help=True)
bot_app = typer.Typer(help="The Rasa project in bot/ (runs in .venv-bot).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(bench_app, name="bench")
app.add_typer(bot_app, name="bot")
app.add_typer(console_app, name="console")
app.add_typer(nlu_app, name="nlu")
app.add_typer(customer_app, name="customer")
app.add_typer(retention_app, name="retention")
app.add_typer(privacy_app, name="privacy")
bench_app.command("console")(bench_console)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ForceFlag = Annotated[bool, typer.Option("--force", help="Retrain even if inputs are unchanged.")]


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


# --- db / data ------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the store to the newest schema (Alembic)."""
    from smartmkt.store.migrate import current_revision, upgrade

    url = get_settings().resolved_database_url
    upgrade(url)
    console.print(f"store at schema revision [bold]{current_revision(url)}[/bold]")


@data_app.command("load-demo")
def data_load_demo(as_json: JsonFlag = False) -> None:
    """Load the demo store (MovieLens-100k from the recbole 1.2.1 wheel) with its clock moved so
    its last purchase falls in the week before, weekdays kept (chosen once, stored); no-op if loaded."""
    from smartmkt.data.demo import load_demo
    from smartmkt.store.db import get_engine
    from smartmkt.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    totals = {"customers": 943, "products": 1682, "orders": 100_000}
    try:
        with counting_bars(totals=totals) as advance:
            counts = load_demo(get_engine(), settings.var_dir / "cache" / "wheels", progress=advance)
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    shift = counts.shift
    if as_json:
        figures = {"customers": counts.customers, "products": counts.products, "orders": counts.orders}
        print(json.dumps({**figures, "shift": shift.as_json() if shift else None}, indent=2))
        return
    console.print(
        f"demo store: {counts.customers} customers, {counts.products} products, {counts.orders} orders"
    )
    if shift:
        console.print(
            f"demo clock: moved {shift.days:+,} days (last demo purchase {shift.source_last_day} -> "
            f"{shift.last_day}; chosen when first loaded, {shift.shifted_at:%Y-%m-%d})"
        )


quarantine_app = typer.Typer(help="Rows an import set aside.", no_args_is_help=True)
data_app.add_typer(quarantine_app, name="quarantine")


def _store() -> Any:
    """The configured store, migrated to the newest schema first (a no-op when it is)."""
    from smartmkt.store.db import get_engine
    from smartmkt.store.migrate import upgrade

    upgrade(get_settings().resolved_database_url)
    return get_engine()


@data_app.command("import")
def data_import(
    customers: Annotated[Path | None, typer.Option("--customers", help="Customers file.")] = None,
    products: Annotated[Path | None, typer.Option("--products", help="Products file.")] = None,
    orders: Annotated[Path | None, typer.Option("--orders", help="Orders file.")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML column mapping.")] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1_000_000, help="Rows per chunk (one transaction each).")
    ] = 100_000,
    as_json: JsonFlag = False,
) -> None:
    """Import a shop's exports (CSV/TSV, JSON Lines, JSON, Parquet, Excel, fixed-width text)."""
    from smartmkt.data.importer import Importer
    from smartmkt.data.mapping import MappingError
    from smartmkt.data.readers import ReaderError
    from smartmkt.store.db import get_engine
    from smartmkt.store.migrate import upgrade

    sources = {k: p for k, p in (("customers", customers), ("products", products), ("orders", orders)) if p}
    if not sources:
        fail("nothing to import: give --customers, --products and/or --orders")
    upgrade(get_settings().resolved_database_url)
    try:
        with counting_bars(enabled=not as_json) as advance:
            report = Importer(
                get_engine(), batch_size=batch_size, progress=lambda path, n: advance(Path(path).name, n)
            ).run(sources, mapping)
    except (ReaderError, MappingError, OSError) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
        return
    for f in report.files:
        if f.mapping_detected:
            console.print(
                f"[bold]{f.kind}[/bold] mapping detected for {f.file}: "
                + ", ".join(f"{k} <- {v}" for k, v in f.mapping.items())
            )
    table = Table("file", "kind", "read", "inserted", "updated", "unchanged", "duplicates", "quarantined")
    for f in report.files:
        table.add_row(
            Path(f.file).name,
            f.kind,
            str(f.rows_read),
            str(f.inserted),
            str(f.updated),
            str(f.unchanged),
            str(sum(f.duplicates.values())),
            str(sum(f.quarantined.values())),
        )
    console.print(table)
    for f in report.files:
        if f.repaired or f.imputed:
            changes = {**f.repaired, **f.imputed}
            console.print(
                f"{Path(f.file).name} repaired: " + ", ".join(f"{k} {n}" for k, n in changes.items())
            )
    rules = {r: n for f in report.files for r, n in f.quarantined.items()}
    if rules:
        console.print(
            "quarantined by rule: "
            + ", ".join(f"{r} {n}" for r, n in rules.items())
            + "  (see `smartmkt data quarantine list`)"
        )
    console.print(f"run {report.run_id} in {report.elapsed_s:.1f} s")


@data_app.command("load-cdnow")
def data_load_cdnow(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: sqlite:///var/cdnow.db (its own store).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load CDNOW (the buy-till-you-die benchmark) through the import pipeline into its own store."""
    from smartmkt.data.cdnow import default_url, load_cdnow

    settings = get_settings()
    url = database_url or default_url(settings.var_dir)
    with counting_bars(enabled=not as_json) as advance:
        report = load_cdnow(
            url, settings.var_dir / "cache" / "wheels", progress=lambda _path, n: advance("CDNOW", n)
        )
    body = report.as_dict()
    if as_json:
        print(json.dumps({"database_url": url, **body}, indent=2, default=str))
        return
    console.print(
        f"CDNOW into {url}: {body['rows_read']} rows read, {body['inserted']} inserted, "
        f"{body['unchanged']} unchanged, {body['duplicates_dropped']} exact duplicates dropped, "
        f"{body['quarantined_total']} quarantined, in {body['elapsed_s']} s"
    )


@data_app.command("report")
def data_report(as_json: JsonFlag = False) -> None:
    """Data quality of the store: counts, date range, missing rates, top categories, quarantine."""
    from smartmkt.data.quality import quality_report

    report = quality_report(_store())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(f"rows: {report['tables']}")
    console.print(f"orders from {report['orders_date_range'][0]} to {report['orders_date_range'][1]}")
    table = Table("table", "field", "missing")
    for name, rates in report["missing_rate"].items():
        for field_name, rate in rates.items():
            table.add_row(name, field_name, f"{rate:.1%}")
    console.print(table)
    console.print("top categories: " + ", ".join(f"{k} {n}" for k, n in report["top_categories"].items()))
    console.print(f"open quarantine: {report['quarantine_open'] or 'none'}")


@quarantine_app.command("list")
def quarantine_list(
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    rule: Annotated[str | None, typer.Option("--rule")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Open quarantined rows with their file, line, rule and raw text."""
    from smartmkt.data.quarantine import list_quarantine

    entries = list_quarantine(_store(), kind, rule, limit)
    if as_json:
        print(json.dumps([e.__dict__ for e in entries], indent=2, default=str))
        return
    table = Table("id", "kind", "file", "line", "rule", "detail", "raw")
    for e in entries:
        table.add_row(
            str(e.id), e.kind, Path(e.source_file).name, str(e.line_number), e.rule, e.detail, e.raw[:60]
        )
    console.print(table)


@quarantine_app.command("retry")
def quarantine_retry(
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    fixed: Annotated[
        Path | None,
        typer.Option(
            "--fixed",
            help="Corrected rows: a file with a quarantine_id column and the original file's columns.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run open quarantined rows through the rules again (e.g. after importing missing customers),
    or import corrected versions of them (--fixed) and resolve the entries they fix."""
    from smartmkt.data.importer import Importer
    from smartmkt.data.readers import ReaderError

    try:
        importer = Importer(_store())
        reports = importer.retry_fixed(fixed) if fixed else importer.retry_quarantine(kind)
    except (ReaderError, ValueError, OSError) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
        return
    for r in reports:
        console.print(
            f"{r.kind} from {Path(r.file).name}: {r.rows_read} retried, {r.accepted} imported, "
            f"{sum(r.quarantined.values())} still quarantined {dict(r.quarantined) or ''}"
        )
    if not reports:
        console.print("nothing to retry")


@quarantine_app.command("export")
def quarantine_export(
    output: Annotated[Path, typer.Argument(help="CSV file to write.")],
    kind: Annotated[str | None, typer.Option("--kind")] = None,
) -> None:
    """Write open quarantined rows to CSV for a person to fix."""
    from smartmkt.data.quarantine import export_quarantine

    if output.is_dir() or not output.parent.is_dir():
        fail(f"{output}: not a file in an existing folder")
    console.print(f"{export_quarantine(_store(), output, kind)} rows written to {output}")


# --- train ------------------------------------------------------------------------------------
SeedFlag = Annotated[
    int | None, typer.Option("--seed", help="Random seed; the same seed and data give the same model.")
]


def _report(result: TrainResult) -> None:
    """One line per model: trained or current, promoted or refused and why, held-out figures."""
    if result.skipped:
        console.print(f"{result.kind}: up to date ({result.fingerprint}) -> {result.path}")
        return
    promotion = result.promotion
    verdict = "promoted" if result.promoted else "[yellow]not promoted[/]"
    why = f" ({promotion.reason})" if promotion else ""
    how = "reused (trained before on the same inputs)" if result.reused else "trained"
    console.print(f"{result.kind}: {how} ({result.fingerprint}), {verdict}{why} -> {result.path}")
    shown = {k: v for k, v in result.metrics.items() if isinstance(v, int | float)}
    if shown:
        console.print("  held-out: " + ", ".join(f"{k} {v}" for k, v in shown.items()))


def _train(kind: str, force: bool, seed: int | None) -> TrainResult:
    from smartmkt.lifecycle import training
    from smartmkt.store.db import get_engine

    trainer = {
        "nlu": training.train_nlu_model,
        "recommender": training.train_recommender_model,
        "purchase": training.train_purchase_model,
    }[kind]
    from smartmkt.lifecycle.evaluation import NoPositives

    try:
        with progress_bars() as update:
            result = trainer(get_settings(), get_engine(), force, update, seed)
    except NoPositives as exc:
        fail(f"{kind}: {exc}; the served model stays")
    _report(result)
    return result


@train_app.command("nlu")
def train_nlu_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """Fine-tune MiniLM on bot/data/nlu (joint intents + entities); gated on bot/tests/nlu_test.yml."""
    _train("nlu", force, seed)


@train_app.command("recommender")
def train_recommender_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """Text + collaborative item vectors and the FAISS index; gated on each customer's latest 20%."""
    _train("recommender", force, seed)


@train_app.command("purchase")
def train_purchase_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """The purchase model (GRU + buy-till-you-die layer), gated on the latest H days; rescores
    every customer with the served model."""
    _train("purchase", force, seed)


@train_app.command("core")
def train_core_cmd(force: ForceFlag = False) -> None:
    """Rasa's dialogue model (rules, stories, forms), in the bot environment."""
    from smartmkt.lifecycle.training import train_core_model

    with progress_bars() as update:
        _report(train_core_model(get_settings(), force, update))


@train_app.command("all")
def train_all_cmd(force: ForceFlag = False, seed: SeedFlag = None) -> None:
    """NLU, recommender, purchase model and Rasa core; each skipped when its inputs are unchanged,
    each promoted only when better than the served one on held-out data beyond noise."""
    train_nlu_cmd(force, seed)
    train_recommender_cmd(force, seed)
    train_purchase_cmd(force, seed)
    train_core_cmd(force)


# --- console users ---------------------------------------------------------------------------
user_app = typer.Typer(help="Marketer console accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The login e-mail.")],
    role: Annotated[str, typer.Option("--role", help="marketer or admin.")] = "marketer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (scripts).")
    ] = False,
) -> None:
    """Create a console user; the password is asked for (twice) unless --password-stdin."""
    from smartmkt.console.users import UserError, create_user

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    try:
        user = create_user(_store(), email, password, role)
    except UserError as exc:
        fail(str(exc))
    console.print(f"created {user.role} {user.email} (id {user.id})")


@user_app.command("list")
def user_list() -> None:
    """Console users and their roles (never their password hashes)."""
    from smartmkt.console.users import list_users

    table = Table("id", "email", "role", "created")
    for user in list_users(_store()):
        table.add_row(str(user.id), user.email, user.role, f"{user.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


# --- bot ------------------------------------------------------------------------------------
def _rasa(args: list[str]) -> None:
    import subprocess

    from smartmkt.lifecycle.training import bot_python

    settings = get_settings()
    code = subprocess.run([str(bot_python(settings)), "-m", "rasa", *args], cwd=settings.bot_dir).returncode
    if code:
        raise typer.Exit(code)


@bot_app.command("validate")
def bot_validate() -> None:
    """`rasa data validate`: domain, rules, stories and NLU data agree (warnings fail)."""
    _rasa(
        [
            "data",
            "validate",
            "--domain",
            "domain.yml",
            "--data",
            "data",
            "--config",
            "config.yml",
            "--fail-on-warnings",
        ]
    )


@bot_app.command("test-stories")
def bot_test_stories() -> None:
    """`rasa test core` on bot/tests/test_stories.yml with the served dialogue model."""
    from smartmkt.store import model_registry

    settings = get_settings()
    model = model_registry.served_path(settings.models_dir, "rasa_core")
    _rasa(
        [
            "test",
            "core",
            "--stories",
            "tests/test_stories.yml",
            "--model",
            str(model),
            "--out",
            str(settings.var_dir / "story-results"),
            "--fail-on-prediction-errors",
        ]
    )


# --- eval -------------------------------------------------------------------------------------
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

    kinds = tuple(model or evaluation.EVALUATED_KINDS)
    unknown = [k for k in kinds if k not in evaluation.EVALUATED_KINDS]
    if unknown:
        fail(f"unknown model {', '.join(unknown)}; choose from {', '.join(evaluation.EVALUATED_KINDS)}")
    try:
        with console.status("evaluating ...", spinner="dots") as status:
            results = evaluation.evaluate_served(
                get_settings(), _store(), kinds, reports, progress=lambda m: status.update(m)
            )
    except (FileNotFoundError, evaluation.NoPositives) as exc:
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
        from smartmkt.lifecycle.training import bot_python

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


# --- recommend / parse ----------------------------------------------------------------------
@app.command("recommend")
def recommend_cmd(
    customer: Annotated[str, typer.Option("--customer", help="Customer id (demo: 1-943).")],
    text: Annotated[str | None, typer.Option("--text", help="What the customer wants, in words.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100)] = 5,
    category: Annotated[list[str] | None, typer.Option("--category")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude")] = None,
    price_max: Annotated[float | None, typer.Option("--price-max", min=0)] = None,
    year: Annotated[str | None, typer.Option("--year", help="1997, 90s, 1980s ...")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Recommend titles for a customer (no offer is created)."""
    from smartmkt.assistant import ShopAssistant
    from smartmkt.recommend.preferences import Preferences
    from smartmkt.recommend.recommender import Recommender
    from smartmkt.store import model_registry
    from smartmkt.store.db import get_engine

    settings = get_settings()
    try:
        model = Recommender.load(model_registry.served_path(settings.models_dir, "recommender"))
    except FileNotFoundError as exc:
        fail(str(exc))
    prefs = Preferences.from_values(category, exclude, price_max, year)
    start = time.perf_counter()
    reply = ShopAssistant(get_engine(), model).recommend(customer, prefs, text, k, with_offer=False)
    elapsed_ms = (time.perf_counter() - start) * 1000
    rows = [
        {
            "product_id": p.id,
            "title": p.title,
            "year": p.year,
            "genres": list(p.genres),
            "price": p.price,
            "score": round(reply.scores[p.id], 4),
        }
        for p in reply.products
    ]
    if as_json:
        print(
            json.dumps(
                {
                    "customer": customer,
                    "personalized": reply.personalized,
                    "preferences": reply.preferences.describe(),
                    "items": rows,
                    "elapsed_ms": round(elapsed_ms, 2),
                },
                indent=2,
            )
        )
        return
    table = Table("#", "title", "year", "genres", "price", "score")
    for n, row in enumerate(rows, 1):
        table.add_row(
            str(n),
            str(row["title"]),
            str(row["year"]),
            ", ".join(row["genres"]),  # type: ignore[arg-type]
            f"${row['price']:.2f}",
            str(row["score"]),
        )
    console.print(table)


@app.command("transcribe")
def transcribe_cmd(
    audio_file: Annotated[Path, typer.Argument(help="wav, flac, mp3, ogg/opus, webm/opus, m4a, ...")],
    backend: Annotated[
        str | None, typer.Option("--backend", help="faster-whisper (default) or openai-whisper.")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="tiny.en (default) or base.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Speech to text with Whisper, offline: transcript, language, duration and timing."""
    from smartmkt.speech.asr import from_settings
    from smartmkt.speech.audio import AudioError, decode

    settings = get_settings()
    try:
        samples = decode(audio_file.read_bytes(), settings.asr_max_seconds, settings.asr_max_bytes)
        loading = time.perf_counter()
        transcriber = from_settings(settings, backend, model)
        load_s = time.perf_counter() - loading
    except (OSError, AudioError, ValueError) as exc:
        fail(str(exc))
    result = transcriber.transcribe(samples)
    report = {
        "text": result.text,
        "language": result.language,
        "duration_s": result.duration_s,
        "speech_s": result.speech_s,
        "transcribe_s": result.seconds,
        "rtf": round(result.rtf, 3),
        "load_s": round(load_s, 2),
        "backend": result.backend,
        "model": result.model,
    }
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(result.text or "[yellow](no speech)[/]")
    console.print(
        f"[dim]{result.backend}/{result.model}, {result.language or '-'}, {result.duration_s:.1f} s audio "
        f"({result.speech_s:.1f} s speech) in {result.seconds:.2f} s (rtf {result.rtf:.2f})[/]"
    )


@app.command("parse")
def parse_cmd(text: str) -> None:
    """Parse one message with the served NLU model (Rasa parse JSON)."""
    from smartmkt.nlu.parser import NLUParser
    from smartmkt.store import model_registry

    settings = get_settings()
    parser = NLUParser(
        model_registry.served_path(settings.models_dir, "nlu"),
        settings.nlu_fallback_threshold,
        settings.nlu_max_chars,
    )
    print(json.dumps(parser.parse(text), indent=2))


# --- run --------------------------------------------------------------------------------------
@app.command("run")
def run_cmd(
    train: Annotated[
        bool,
        typer.Option(
            help="Load the demo store and train what is missing first; retrain on new data in the "
            "background once serving."
        ),
    ] = True,
) -> None:
    """Start Rasa, the action server and the app under one supervisor that restarts a service
    that dies or stops answering (Ctrl-C stops all)."""
    import threading

    from smartmkt.runtime.processes import service_specs
    from smartmkt.runtime.supervisor import Supervisor

    settings = get_settings()
    if train:
        data_load_demo()
        _train_missing(settings)
    specs = service_specs(settings)
    supervisor = Supervisor(specs)

    def announce() -> None:
        if not supervisor.wait_all_up():
            console.print(f"[red]not ready:[/red] {supervisor.not_up()}", soft_wrap=True)
            return
        console.print(_banner(settings), soft_wrap=True)
        for name, reason in _degraded(f"{settings.app_url}/health").items():
            console.print(f"[yellow]warning:[/] {name} model not ready ({reason})", soft_wrap=True)
        if train:
            _retrain_in_background(supervisor)

    threading.Thread(target=announce, daemon=True).start()
    _schedule_retention(settings, supervisor)
    sys.exit(supervisor.serve())


def _degraded(health_url: str) -> dict[str, str]:
    """The models a healthy service serves without (``not_ready`` in its /health)."""
    import httpx

    try:
        return dict(httpx.get(health_url, timeout=5).json().get("not_ready") or {})
    except (httpx.HTTPError, ValueError):
        return {}


# The models trained from the store's data: they go stale as customers buy. (NLU and Rasa core
# are trained from bot/: they change with the code, not with the shop's data.)
DATA_MODELS = ("recommender", "purchase")


def _train_missing(settings: Any) -> None:
    """Before serving: the models trained from bot/ when stale (a new version of the bot), and a
    data model only when none is served yet. A served data model is served at once, even if
    customers have bought since it was trained: `_retrain_in_background` catches up."""
    from smartmkt.store import model_registry

    train_nlu_cmd(False, None)
    train_core_cmd(False)
    for kind in DATA_MODELS:
        if model_registry.served(settings.models_dir, kind) is None:
            _train(kind, False, None)


def _retrain_in_background(supervisor: Any) -> None:
    """`smartmkt train recommender` then `purchase`, niced, while the services serve: each is
    skipped when its data is unchanged and promoted only when its gate says so; the running
    services load a promoted model without a restart (smartmkt.lifecycle.hot_swap)."""
    import subprocess

    command = " && ".join(
        f"{shlex.quote(str(Path(sys.argv[0]).resolve()))} train {kind}" for kind in DATA_MODELS
    )
    proc = subprocess.Popen(
        ["nice", "-n", "10", "bash", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        line = raw.decode(errors="replace").strip()
        if line:
            supervisor.write("train", line)
    supervisor.say(f"background retraining finished (exit {proc.wait()})")


def _banner(settings: Any) -> str:
    rest = f"{settings.rasa_url}/webhooks/rest/webhook"
    cli = ".venv/bin/smartmkt"  # pasted into a new shell at the repository root, without activating
    return (
        "\n[bold green]smartmkt is running[/bold green]\n"
        f"  Rasa (REST, socket.io) {settings.rasa_url}\n"
        f"  action server          http://{settings.host}:{settings.action_port}\n"
        f"  smartmkt app (NLU,API) {settings.app_url}  (docs: {settings.app_url}/docs)\n"
        f"  web chat               {settings.app_url}/\n"
        f"  marketer console       {settings.app_url}/console  (accounts: {cli} user create)\n\n"
        "In a new shell at the repository root, talk to the bot as demo customer 42 (a signed "
        "customer token and a session bound to it):\n"
        f'  eval "$({cli} token 42 --shell)"\n'
        f"  curl -s {rest} -H 'Content-Type: application/json' \\\n"
        '    -d "{\\"sender\\": \\"$SESSION\\", \\"message\\": \\"recommend a comedy under \\$10\\", '
        '\\"metadata\\": {\\"customer_token\\": \\"$TOKEN\\"}}"\n'
        "or by voice (any recording; espeak-ng makes one):\n"
        '  espeak-ng -w /tmp/ask.wav "can you recommend a comedy under ten dollars"\n'
        f"  curl -s {settings.app_url}/voice -F audio=@/tmp/ask.wav -F sender=$SESSION \\\n"
        "    -F customer_token=$TOKEN\n"
        "Ctrl-C stops everything.\n"
    )


@app.command("token")
def token_cmd(
    customer: Annotated[str, typer.Argument(help="The customer reference (the shop's customer id).")],
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30)] = 1.0,
    shell: Annotated[bool, typer.Option("--shell", help="SESSION=... TOKEN=... for eval.")] = False,
) -> None:
    """A signed customer token and a chat session id bound to it, as the shop's site would issue."""
    from smartmkt.security.identity import Refused, issue_token, new_session_id
    from smartmkt.security.secrets import local_secret

    secret = local_secret(get_settings(), "customer_token_secret")
    try:
        token = issue_token(secret, customer, hours * 3600)
    except Refused as exc:
        raise typer.BadParameter(str(exc), param_hint="CUSTOMER") from exc
    session = new_session_id(secret, customer)
    if shell:
        print(f"SESSION={shlex.quote(session)}\nTOKEN={shlex.quote(token)}")
    else:
        print(json.dumps({"customer_ref": customer, "session_id": session, "token": token}))


def _schedule_retention(settings: Any, supervisor: Any) -> Any:
    """Conversations older than SMARTMKT_RETENTION_DAYS are purged once the services are up, then
    every SMARTMKT_RETENTION_INTERVAL_HOURS (24), while `smartmkt run` runs (smartmkt.privacy)."""
    from smartmkt.privacy.retention import DailyRetention, run_retention

    def job() -> Any:
        from smartmkt.cli.console_commands import engines

        store, tracker = engines()
        run = run_retention(store, tracker, settings.retention_days)
        console.print(f"{run.summary()}; next run in {settings.retention_interval_hours:g} h", soft_wrap=True)
        return run

    def services_up() -> bool:  # Rasa has made its events table by then
        return bool(supervisor.wait_all_up())

    scheduler = DailyRetention(job, settings.retention_interval_hours * 3600, wait_for=services_up)
    scheduler.start()
    return scheduler


# --- bench ------------------------------------------------------------------------------------
def _print_models(report: dict[str, Any], figures: tuple[str, ...]) -> None:
    """A benchmark's models, one row each, with the given figures."""
    table = Table("model", *(f.replace("_", " ") for f in figures))
    for name, m in report["models"].items():
        table.add_row(name, *(str(m[f]) for f in figures))
    console.print(table)


@bench_app.command("purchase")
def bench_purchase_cmd(
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=200)] = 12,
    as_json: JsonFlag = False,
) -> None:
    """Purchase prediction on CDNOW (its own store, never the product's): smartmkt vs BG/NBD,
    Pareto/NBD and RFM regression."""
    from smartmkt.bench.purchase import ensure_cdnow, run_purchase_bench
    from smartmkt.lifecycle.evaluation import NoPositives

    try:
        with console.status("loading CDNOW and fitting the models ...", spinner="dots"):
            report = run_purchase_bench(ensure_cdnow(get_settings().var_dir), epochs=epochs)
    except NoPositives as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(f"holdout window: {report['window']['start']}..{report['window']['end']}")
    _print_models(report, ("auc", "accuracy", "precision", "recall", "f1", "mae", "rmse", "aggregate_error"))


@bench_app.command("recommend")
def bench_recommend_cmd(
    faiss_items: Annotated[
        int, typer.Option("--faiss-items", min=1000, help="Synthetic catalog size.")
    ] = 1_000_000,
    as_json: JsonFlag = False,
) -> None:
    """Top-10 quality on the demo data (a scratch store loaded for the run, never the product's)
    vs popularity, ItemKNN, ALS and EASE; FAISS at scale."""
    from smartmkt.bench.recommend import run_recommend_bench
    from smartmkt.bench.scratch import scratch_demo_store
    from smartmkt.lifecycle.evaluation import NoPositives

    settings = get_settings()
    try:
        with (
            console.status("loading the demo into a scratch store ...", spinner="dots") as status,
            scratch_demo_store(settings.var_dir / "cache" / "wheels") as scratch,
        ):
            report = run_recommend_bench(
                scratch,
                faiss_items=faiss_items,
                exact_max_items=settings.faiss_exact_max_items,
                progress=lambda message: status.update(message),
            )
    except NoPositives as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _print_models(report, ("recall@10", "ndcg@10", "coverage@10"))
    for key in ("smartmkt_vs_best_peer", "smartmkt_vs_sequence_aware_reference"):
        console.print(f"ndcg@10 ratio vs {report[key]['peer']}: {report[key]['ndcg_ratio']}")
    console.print(f"FAISS: {report['faiss']}")


@bench_app.command("offers")
def bench_offers_cmd(as_json: JsonFlag = False) -> None:
    """The offer policy replayed on the demo data's last period (a scratch store loaded for the
    run, never the product's), against random targeting."""
    from smartmkt.bench.offers import run_offers_bench
    from smartmkt.bench.scratch import scratch_demo_store
    from smartmkt.lifecycle.evaluation import NoPositives
    from smartmkt.offers.policy import OfferPolicy

    settings = get_settings()
    try:
        with (
            console.status("loading the demo into a scratch store, training, replaying ...", spinner="dots"),
            scratch_demo_store(settings.var_dir / "cache" / "wheels") as scratch,
        ):
            report = run_offers_bench(
                scratch, settings.purchase_horizon_days, OfferPolicy.load(settings.offer_policy)
            )
    except NoPositives as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(report)


@bench_app.command("asr")
def bench_asr_cmd(
    turns: Annotated[
        int, typer.Option("--turns", min=1, help="Voice turns through the running product.")
    ] = 20,
    window_study: Annotated[
        bool,
        typer.Option(
            "--window-study",
            help="Instead: WER per encoder window (30 s vs the configured one), 10 voices x 2 speeds.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Whisper rtf and WER per backend on generated shopping speech; voice turn latency."""
    from smartmkt.bench.asr import run_asr_bench, run_window_study

    settings = get_settings()
    with console.status("benchmarking ...", spinner="dots") as status:
        if window_study:
            study = run_window_study(
                settings, (30, settings.asr_window_s), progress=lambda message: status.update(message)
            )
            print(json.dumps(study, indent=2))
            return
        report = run_asr_bench(settings, turns, progress=lambda message: status.update(message))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("backend/model", "rtf", "wer", "load s", title=f"{report['utterances']} utterances")
    for name, figures in report["backends"].items():
        table.add_row(name, str(figures["rtf"]), str(figures["wer"]), str(figures["load_s"]))
    console.print(table)
    console.print(f"faster-whisper vs openai-whisper (tiny.en): {report['faster_vs_openai_tiny_en']}")
    console.print(f"voice turn p50 {report['voice_turn_p50_ms']} ms, p95 {report['voice_turn_p95_ms']} ms")


@bench_app.command("import")
def bench_import_cmd(
    rows: Annotated[
        int, typer.Option("--rows", min=1000, help="Lines in the generated orders file.")
    ] = 5_000_000,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Where the file and scratch store go (default: temp).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate a messy orders export and import it into a fresh SQLite store; print the figures."""
    from smartmkt.bench.imports import run_import_bench

    with console.status(f"generating {rows:,} messy order lines and importing them ...", spinner="dots"):
        report = run_import_bench(rows, workdir)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(
        f"{report['rows']:,} rows in {report['elapsed_s']} s = {report['rows_per_s']:,} rows/s, "
        f"peak RSS {report['peak_rss_mb']} MB, {report['quarantined']:,} quarantined "
        f"({report['file_mb']} MB file)"
    )


@bench_app.command("chat")
def bench_chat_cmd(
    users: Annotated[int, typer.Option("--users", min=1, max=200)] = 4,
    turns: Annotated[int, typer.Option("--turns", min=1, max=100, help="Turns per customer.")] = 20,
    think_ms: Annotated[
        int | None,
        typer.Option(
            "--think-ms",
            min=0,
            max=60_000,
            help="Mean pause between a customer's turns (default 0; with --minutes 5000).",
        ),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            "--minutes",
            min=0.1,
            max=600,
            help="Load and soak: realistic conversations for this long after the warm-up "
            "(adds errors, p95_ms, rss_growth_pct); --turns is then ignored.",
        ),
    ] = None,
    warmup_s: Annotated[
        float, typer.Option("--warmup-s", min=0, max=600, help="With --minutes: unmeasured warm-up.")
    ] = 30.0,
    rasa_url: Annotated[
        str | None,
        typer.Option("--rasa-url", help="Use a running Rasa; default: start everything on free ports."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Simulated customers chatting concurrently over REST; prints latency and throughput."""
    from smartmkt.bench.chat import run_chat_bench

    report = run_chat_bench(
        get_settings(),
        users=users,
        turns=turns,
        think_ms=think_ms,
        rasa_url=rasa_url,
        minutes=minutes,
        warmup_s=warmup_s,
    )
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        console.print(report)


if __name__ == "__main__":
    app()
