"""What the app serves, loaded once per process from models/manifest.json."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smartmkt import registry
from smartmkt.settings import Settings

if TYPE_CHECKING:
    from smartmkt.nlu.parser import NLUParser


@dataclass
class AppState:
    settings: Settings
    _parser: NLUParser | None = None
    _parser_path: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def parser(self) -> NLUParser:
        """The served NLU model; reloaded when the manifest points at a new one."""
        from smartmkt.nlu.parser import NLUParser

        path = registry.served_path(self.settings.models_dir, "nlu")
        with self._lock:
            if self._parser is None or self._parser_path != str(path):
                self._parser = NLUParser(
                    path, self.settings.nlu_fallback_threshold, self.settings.nlu_max_chars
                )
                self._parser_path = str(path)
            return self._parser
