"""``smartmkt bench``: the benchmarks, each printing its figures (JSON with --json); the
measuring is in smartmkt.bench."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from smartmkt.cli.progress import console, progress_bars, status
from smartmkt.cli.shared import JsonFlag, fail
from smartmkt.settings import get_settings

bench_app = typer.Typer(help="Benchmarks that print JSON figures.", no_args_is_help=True)


@bench_app.command("console")
def bench_console(
    conversations: Annotated[
        int, typer.Option("--conversations", min=100, help="Conversations to seed.")
    ] = 100_000,
    requests: Annotated[int, typer.Option("--requests", min=5, help="Requests per measured case.")] = 40,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Where the scratch store goes (default: temp).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Seed Rasa events for many conversations in a scratch store, index them, and time the
    console's list and transcript pages over HTTP (p50/p95)."""
    from smartmkt.bench.console import run_console_bench

    with progress_bars() as update:
        report = run_console_bench(get_settings(), conversations, requests, workdir, progress=update)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(report)


def _print_models(report: dict[str, Any], figures: tuple[str, ...]) -> None:
    """A benchmark's models, one row each, with the given figures."""
    table = Table("model", *(f.replace("_", " ") for f in figures))
    for name, m in report["models"].items():
        table.add_row(name, *(str(m[f]) for f in figures))
    console.print(table)


@bench_app.command("purchase")
def bench_purchase_cmd(
    epochs: Annotated[int, typer.Option("--epochs", min=1, max=200)] = 12,
    reports: Annotated[
        Path | None,
        typer.Option("--reports", help="Where the PNG plots go (default: <var>/reports)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Purchase prediction on CDNOW (its own store, never the product's): smartmkt vs BG/NBD,
    Pareto/NBD, RFM regression and LightGBM, with a reliability and a tracking plot."""
    from smartmkt.bench.purchase import ensure_cdnow, run_purchase_bench
    from smartmkt.lifecycle.heldout import NoPositives

    settings = get_settings()
    try:
        with status("loading CDNOW, tuning and fitting the models ..."):
            report = run_purchase_bench(
                ensure_cdnow(settings.var_dir),
                epochs=epochs,
                reports_dir=reports or settings.var_dir / "reports",
            )
    except NoPositives as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(f"holdout window: {report['window']['start']}..{report['window']['end']}")
    _print_models(
        report, ("auc", "accuracy", "precision", "recall", "f1", "mae", "rmse", "brier", "aggregate_error")
    )
    for name, chosen in report["chosen_configurations"].items():
        console.print(f"{name} chosen on validation: {chosen}")
    for name, path in report["plots"].items():
        console.print(f"{name} plot: {path}")


@bench_app.command("recommend")
def bench_recommend_cmd(
    faiss_items: Annotated[
        int, typer.Option("--faiss-items", min=1000, help="Synthetic catalog size.")
    ] = 1_000_000,
    configs: Annotated[
        int, typer.Option("--configs", min=1, max=12, help="Configurations every model may try.")
    ] = 4,
    max_epochs: Annotated[
        int, typer.Option("--max-epochs", min=1, help="Epochs a RecBole model may train per configuration.")
    ] = 30,
    patience: Annotated[
        int,
        typer.Option("--patience", min=1, help="Epochs without a better validation ndcg before stopping."),
    ] = 3,
    peers: Annotated[
        str, typer.Option("--recbole", help="RecBole models, comma-separated ('' for none).")
    ] = "BPR,LightGCN,GRU4Rec,SASRec,BERT4Rec",
    protocols: Annotated[
        str, typer.Option("--protocols", help="temporal, leave_one_out, or both comma-separated.")
    ] = "temporal,leave_one_out",
    cross_check: Annotated[
        bool,
        typer.Option("--cross-check/--no-cross-check", help="Also run RecBole's run_recbole for SASRec."),
    ] = True,
    rerun: Annotated[
        bool,
        typer.Option("--rerun", help="Run RecBole again even where an earlier run answered the same job."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Top-10 quality on the demo data (a scratch store loaded for the run, never the product's)
    vs popularity, ItemKNN, ALS, EASE and RecBole's SASRec, GRU4Rec, BERT4Rec, LightGCN and BPR,
    every model tuned on the same budget; FAISS at scale. Progress on stderr."""
    from smartmkt.bench.protocols import Budget
    from smartmkt.bench.recbole_peers import GRIDS, RecBoleMissing
    from smartmkt.bench.recommend import run_recommend_bench
    from smartmkt.bench.scratch import scratch_demo_store
    from smartmkt.lifecycle.heldout import NoPositives

    chosen_peers = tuple(p.strip() for p in peers.split(",") if p.strip())
    unknown = [p for p in chosen_peers if p not in GRIDS]
    chosen_protocols = tuple(p.strip() for p in protocols.split(",") if p.strip())
    if unknown:
        fail(f"unknown RecBole model(s) {', '.join(unknown)}; known: {', '.join(GRIDS)}")
    if not chosen_protocols or set(chosen_protocols) - {"temporal", "leave_one_out"}:
        fail(f"--protocols takes temporal and/or leave_one_out, not {protocols!r}")
    settings = get_settings()
    try:
        with (
            status("loading the demo into a scratch store ...") as spinner,
            scratch_demo_store(settings.var_dir / "cache" / "wheels") as scratch,
        ):
            report = run_recommend_bench(
                scratch,
                faiss_items=faiss_items,
                exact_max_items=settings.faiss_exact_max_items,
                budget=Budget(configs, max_epochs, patience),
                recbole_models=chosen_peers,
                protocols=chosen_protocols,
                cross_check=cross_check,
                progress=lambda message: spinner.update(message),
                reuse=not rerun,
            )
    except (NoPositives, RecBoleMissing) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for name, figures in report["protocols"].items():
        console.print(f"[bold]{name}[/bold]: {figures['split']}")
        _print_models(figures, ("recall@10", "ndcg@10", "coverage@10", "train_seconds", "latency_ms"))
        for model, row in figures["models"].items():
            console.print(f"  {model} chosen on validation: {row['chosen']}")
        for key in ("smartmkt_vs_best_peer", "smartmkt_vs_sequence_aware_reference"):
            console.print(f"ndcg@10 ratio vs {figures[key]['peer']}: {figures[key]['ndcg_ratio']}")
    if "recbole_cross_check" in report:
        console.print(f"run_recbole cross-check: {report['recbole_cross_check']}")
    console.print(f"FAISS: {report['faiss']}")


@bench_app.command("preferences")
def bench_preferences_cmd(
    requests: Annotated[
        int, typer.Option("--requests", min=20, help="Generated shopper requests (the figure: 300+).")
    ] = 360,
    seed: Annotated[int, typer.Option("--seed", help="Fixes the requests and who asks them.")] = 20,
    nlu: Annotated[
        Path | None,
        typer.Option("--nlu", help="An NLU model folder to measure (default: the served one)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stated preferences on the demo data (a scratch store loaded for the run, never the
    product's): generated shopper requests through the served NLU and the assistant; the share
    of the top 5 that satisfies every stated constraint and the personal ndcg@10, against a
    filter-then-popularity baseline."""
    from smartmkt.bench.preferences import recommender_for, run_preferences_bench
    from smartmkt.bench.scratch import scratch_demo_store
    from smartmkt.lifecycle.heldout import NoPositives
    from smartmkt.nlu.parser import NLUParser
    from smartmkt.store import model_registry

    settings = get_settings()
    try:
        parser = NLUParser(
            nlu or model_registry.served_path(settings.models_dir, "nlu"),
            settings.nlu_fallback_threshold,
            settings.nlu_max_chars,
        )
        with progress_bars() as update, scratch_demo_store(settings.var_dir / "cache" / "wheels") as scratch:
            recommender, source = recommender_for(scratch, settings.models_dir, progress=update)
            report = run_preferences_bench(
                scratch, parser, recommender, requests, seed, progress=update, recommender_source=source
            )
    except (NoPositives, FileNotFoundError) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, indent=2))
        return
    _print_models(
        report,
        ("constraint_satisfaction_at_5", "personal_ndcg_at_10", "personal_ndcg_at_10_within_satisfying"),
    )
    console.print(
        f"{report['requests']} requests; NLU: {report['nlu']}; recommender: {report['recommender']}"
    )


@bench_app.command("offers")
def bench_offers_cmd(
    recommender_epochs: Annotated[
        int | None,
        typer.Option(
            "--recommender-epochs",
            min=1,
            max=200,
            help="Epochs the recommender's transformer trains (default: the product's setting).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The offer policy replayed on the demo data's last period (a scratch store loaded for the
    run, never the product's), against random targeting."""
    from smartmkt.bench.offers import run_offers_bench
    from smartmkt.bench.scratch import scratch_demo_store
    from smartmkt.lifecycle.heldout import NoPositives
    from smartmkt.offers.policy import OfferPolicy
    from smartmkt.recommend.sequential import SequenceConfig

    settings = get_settings()
    try:
        with (
            status("loading the demo into a scratch store, training, replaying ..."),
            scratch_demo_store(settings.var_dir / "cache" / "wheels") as scratch,
        ):
            report = run_offers_bench(
                scratch,
                settings.purchase_horizon_days,
                OfferPolicy.load(settings.offer_policy),
                sequence_config=SequenceConfig(epochs=recommender_epochs) if recommender_epochs else None,
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
    with status("benchmarking ...") as spinner:
        if window_study:
            study = run_window_study(
                settings, (30, settings.asr_window_s), progress=lambda message: spinner.update(message)
            )
            print(json.dumps(study, indent=2))
            return
        report = run_asr_bench(settings, turns, progress=lambda message: spinner.update(message))
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
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="A PostgreSQL server to import into instead (any database of it, e.g. .../postgres): "
            "the bench creates a database of its own there and drops it afterwards.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate a messy orders export and import it into a fresh store (SQLite, or a new database
    on a PostgreSQL server); print the figures."""
    from smartmkt.bench.imports import BenchStoreError, run_import_bench

    with status(f"generating {rows:,} messy order lines and importing them ..."):
        try:
            report = run_import_bench(rows, workdir, database_url=database_url)
        except BenchStoreError as exc:
            fail(str(exc))
            return
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
            help="Mean pause between a customer's turns (default 0; with --minutes or --cluster 5000).",
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
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="Instead: realistic conversations for --seconds against a single stack, then "
            "against a cluster (2 replicas of each service behind HAProxy); prints both.",
        ),
    ] = False,
    seconds: Annotated[
        int | None,
        typer.Option("--seconds", min=10, max=3600, help="With --cluster: the load's length (default 300)."),
    ] = None,
    faults: Annotated[
        bool,
        typer.Option(
            "--faults",
            help="With --cluster: SIGKILL one app, one action and one Rasa replica a third into the load.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Simulated customers chatting concurrently over REST; prints latency and throughput."""
    if cluster:
        if rasa_url or minutes is not None:
            fail("--cluster starts its own single stack and cluster: not with --rasa-url or --minutes")
        _bench_chat_cluster(users, seconds or 300, think_ms, faults, as_json)
        return
    if faults:
        fail("--faults only applies with --cluster")
    if seconds is not None:
        fail("--seconds only applies with --cluster (use --minutes for a load on a single stack)")
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


def _bench_chat_cluster(users: int, seconds: int, think_ms: int | None, faults: bool, as_json: bool) -> None:
    """``bench chat --cluster``: progress on stderr, the one JSON object (or a table) on stdout."""
    from smartmkt.bench.cluster_chat import SECTION_KEYS, run_cluster_chat_bench

    report = run_cluster_chat_bench(
        get_settings(),
        users=users,
        seconds=seconds,
        think_ms=think_ms,
        faults=faults,
        say=lambda message: console.print(f"[dim]{message}[/dim]"),
    )
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("", "single", "cluster")
    for key in (*SECTION_KEYS[:-1], "lost_messages", "duplicate_messages", "rss_total_mb"):
        table.add_row(key, str(report["single"][key]), str(report["cluster"][key]))
    console.print(table)
    console.print(f"lost messages: {report['lost_messages']}; faults: {report.get('faults_killed', 'none')}")
    console.print(report["notes"])


@bench_app.command("api")
def bench_api_cmd(
    orders: Annotated[
        int,
        typer.Option(
            "--orders", min=100, max=1_000_000, help="Order lines per batched run (batches of 100 and 1,000)."
        ),
    ] = 20_000,
    singles: Annotated[
        int, typer.Option("--singles", min=20, max=100_000, help="Single-order requests timed one by one.")
    ] = 500,
    as_json: JsonFlag = False,
) -> None:
    """The shop API on the running product (scratch store): order lines per second in batches of
    1, 100 and 1,000, a single order's p95, and the time from a product's upsert to its first
    recommendation in the chat."""
    from smartmkt.bench.shop_api import run_api_bench

    report = run_api_bench(
        get_settings(), orders, singles, say=lambda line: console.print(line, soft_wrap=True)
    )
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(report)
