"""What the app serves: the NLU model (swapped in place when a new one is promoted), the speech
engine of the voice channel, and the one engine (connection pool) on the store that every route
and background job of the process shares."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from smartmkt.lifecycle.hot_swap import ServedModel, warm_up
from smartmkt.settings import Settings
from smartmkt.speech.asr import SharedTranscriber
from smartmkt.store.db import make_engine

if TYPE_CHECKING:
    from smartmkt.nlu.parser import NLUParser


@dataclass
class AppState:
    settings: Settings
    nlu: ServedModel[NLUParser] = field(init=False)
    speech: SharedTranscriber = field(init=False)

    warm_errors: dict[str, str] = field(init=False, default_factory=dict)
    warm_ms: dict[str, float] = field(init=False, default_factory=dict)

    _store: Engine | None = field(init=False, default=None)
    _store_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.nlu = ServedModel(self.settings.models_dir, "nlu", self._load_parser)
        self.speech = SharedTranscriber(self.settings)

    @property
    def store(self) -> Engine:
        """The store's engine, made on first use (the shop API, the console, the demo shop and
        the webhook sender share its pool)."""
        with self._store_lock:
            if self._store is None:
                self._store = make_engine(self.settings.resolved_database_url)
            return self._store

    def _load_parser(self, path: Path) -> NLUParser:
        from smartmkt.nlu.parser import NLUParser

        return NLUParser(path, self.settings.nlu_fallback_threshold, self.settings.nlu_max_chars)

    def parser(self) -> NLUParser:
        """The served NLU model (the previous one if the newest failed to load)."""
        return self.nlu.get()

    def warm_up(self) -> None:
        """Load and exercise every model this process serves (the NLU parser on a sentence,
        Whisper on a short spoken phrase from espeak-ng), so the first customer does not pay for
        cold caches. A model that fails is recorded by name in ``warm_errors`` (``/health``
        reports it)."""
        from smartmkt.speech.audio import decode
        from smartmkt.speech.tts import wav_bytes

        warmed = warm_up(
            {
                "nlu": lambda: self.parser().parse("recommend a comedy under $10"),
                "speech": lambda: self.speech.transcribe(decode(wav_bytes("show me my offers"))),
            }
        )
        self.warm_ms = warmed.ms
        self.warm_errors = {name: f"{type(exc).__name__}: {exc}" for name, exc in warmed.errors.items()}
