"""smartmkt: a conversational marketing assistant, usable as a library without Rasa.

What a user of the package needs, importable from here::

    from smartmkt import ShopAssistant, get_settings, served_assistant

    reply = served_assistant().recommend("42", text="a funny comedy")   # the served models
    [p.title for p in reply.products], reply.offer

- ``ShopAssistant`` / ``served_assistant()``: recommendations with an offer, prices, purchases,
  history, opt-out and erasure for a customer (what the chat's actions call).
- ``Settings`` / ``get_settings()``: every setting, from ``SMARTMKT_*`` environment variables.
- ``Recommender``, ``CatalogItem``, ``Preferences``: the recommender on its own (fit, save, load,
  recommend) and the values it takes.
- ``TrainedPurchaseModel``, ``purchase_days``, ``fit_purchase_model``, ``load_purchase_model``:
  the purchase model (P(purchase), expected purchases, P(alive)) on a store's orders.

The names are loaded on first use (PEP 562), so ``import smartmkt`` stays light: Rasa's own
environment imports smartmkt's masking module without torch, FAISS or the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> (module, attribute): the package's public API, and where each name is defined.
_PUBLIC: dict[str, tuple[str, str]] = {
    "ShopAssistant": ("smartmkt.assistant", "ShopAssistant"),
    "served_assistant": ("smartmkt.assistant", "served_assistant"),
    "Settings": ("smartmkt.settings", "Settings"),
    "get_settings": ("smartmkt.settings", "get_settings"),
    "CatalogItem": ("smartmkt.catalog", "CatalogItem"),
    "Preferences": ("smartmkt.recommend.preferences", "Preferences"),
    "Recommender": ("smartmkt.recommend.recommender", "Recommender"),
    "TrainedPurchaseModel": ("smartmkt.predict.train", "TrainedPurchaseModel"),
    "purchase_days": ("smartmkt.predict.history", "purchase_days"),
    "fit_purchase_model": ("smartmkt.predict.train", "fit"),
    "load_purchase_model": ("smartmkt.predict.scoring", "load"),
}

__all__ = [
    "CatalogItem",
    "Preferences",
    "Recommender",
    "Settings",
    "ShopAssistant",
    "TrainedPurchaseModel",
    "fit_purchase_model",
    "get_settings",
    "load_purchase_model",
    "purchase_days",
    "served_assistant",
]

if TYPE_CHECKING:
    from smartmkt.assistant import ShopAssistant, served_assistant
    from smartmkt.catalog import CatalogItem
    from smartmkt.predict.history import purchase_days
    from smartmkt.predict.scoring import load as load_purchase_model
    from smartmkt.predict.train import TrainedPurchaseModel
    from smartmkt.predict.train import fit as fit_purchase_model
    from smartmkt.recommend.preferences import Preferences
    from smartmkt.recommend.recommender import Recommender
    from smartmkt.settings import Settings, get_settings


def __getattr__(name: str) -> Any:
    """Import a public name's module the first time the name is asked for."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'smartmkt' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
