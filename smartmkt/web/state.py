"""What the app serves: the NLU model (swapped in place when a new one is promoted) and the
speech engine of the voice channel."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from smartmkt.serving import ServedModel
from smartmkt.settings import Settings
from smartmkt.speech.asr import SharedTranscriber

if TYPE_CHECKING:
    from smartmkt.nlu.parser import NLUParser


@dataclass
class AppState:
    settings: Settings
    nlu: ServedModel[NLUParser] = field(init=False)
    speech: SharedTranscriber = field(init=False)

    def __post_init__(self) -> None:
        self.nlu = ServedModel(self.settings.models_dir, "nlu", self._load_parser)
        self.speech = SharedTranscriber(self.settings)

    def _load_parser(self, path: Path) -> NLUParser:
        from smartmkt.nlu.parser import NLUParser

        return NLUParser(path, self.settings.nlu_fallback_threshold, self.settings.nlu_max_chars)

    def parser(self) -> NLUParser:
        """The served NLU model (the previous one if the newest failed to load)."""
        return self.nlu.get()
