"""The one place actions get smartmkt from: a per-process ShopAssistant, built lazily.

Nothing is loaded at import time (the action server starts fast and tests can swap settings);
the assistant is rebuilt when models/manifest.json points at a newly promoted recommender, and
keeps the old one if the new one fails to load (smartmkt.serving).
"""

from __future__ import annotations

import threading
from pathlib import Path

from smartmkt.assistant import ShopAssistant
from smartmkt.serving import ServedModel
from smartmkt.settings import get_settings
from smartmkt.store.db import get_engine

_lock = threading.Lock()
_served: ServedModel[ShopAssistant] | None = None


def _build_assistant(path: Path) -> ShopAssistant:
    import torch

    from smartmkt.recommend.recommender import Recommender

    torch.set_num_threads(get_settings().inference_threads)
    return ShopAssistant(get_engine(), Recommender.load(path))


def get_assistant() -> ShopAssistant:
    global _served
    with _lock:
        if _served is None or _served.models_dir != get_settings().models_dir:
            _served = ServedModel(get_settings().models_dir, "recommender", _build_assistant)
    return _served.get()
