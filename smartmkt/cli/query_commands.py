"""``smartmkt recommend``, ``transcribe`` and ``parse``: one question to a model, its answer
printed (registered on the root app by smartmkt.cli.main)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console
from smartmkt.cli.shared import JsonFlag, fail
from smartmkt.settings import get_settings


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
    assistant = ShopAssistant(get_engine(), model)
    assistant.follow_catalog()  # products written since the model was trained, as serving does
    start = time.perf_counter()
    reply = assistant.recommend(customer, prefs, text, k, with_offer=False)
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
