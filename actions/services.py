"""The one place actions get smartmkt from: a per-process ShopAssistant, built lazily.

Nothing is loaded at import time (the action server starts fast and tests can swap settings);
the assistant is rebuilt when models/manifest.json points at a newer recommender.
"""

from __future__ import annotations

import threading

from smartmkt import registry
from smartmkt.assistant import ShopAssistant
from smartmkt.settings import get_settings
from smartmkt.store.db import get_engine

_lock = threading.Lock()
_current: tuple[str, ShopAssistant] | None = None


def get_assistant() -> ShopAssistant:
    global _current
    from smartmkt.recommend.recommender import Recommender

    settings = get_settings()
    path = registry.served_path(settings.models_dir, "recommender")
    with _lock:
        if _current is None or _current[0] != str(path):
            import torch

            torch.set_num_threads(settings.inference_threads)
            _current = (str(path), ShopAssistant(get_engine(), Recommender.load(path)))
        return _current[1]
