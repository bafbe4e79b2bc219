"""The catalog as it is now, on top of the catalog a recommender was trained on.

A shop adds and changes products all day (the shop API, imports); retraining for each one would
take minutes. So a serving recommender keeps an overlay: every product created or changed since
its training (``smartmkt.catalog.CatalogChange``, read from the store by its catalog version)
gets its own row in a small FAISS index of its own, and the trained row of a product that
changed (or left the catalog) is hidden. A search asks both indexes and merges their top k.

An overlay row is built the way training builds one: the product's text embedding (MiniLM, as
the trained rows) next to its collaborative part. A changed product keeps its trained
collaborative vector and bias (what customers did with it has not changed); a new product has
no purchases yet, so its collaborative part is zero and its bias is the trained catalog's lower
quartile: it wins on what a customer asks for in words, and does not push aside titles that
people buy. The next `smartmkt train` learns it properly and the overlay starts empty again.

Overlays are immutable: ``with_changes`` returns a new one, and the recommender swaps its
reference, so a search in flight never sees half an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from smartmkt.catalog import GENRES, CatalogChange, CatalogItem
from smartmkt.recommend.index import ItemIndex
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.text_encoder import encode, product_text

NEW_ITEM_BIAS_QUANTILE = 0.25


@dataclass(frozen=True)
class CatalogArrays:
    """What the catalog's hard filters read, one row per item."""

    ids: np.ndarray
    prices: np.ndarray
    years: np.ndarray
    genres: np.ndarray  # bool (items, GENRES)

    @classmethod
    def of(cls, items: Sequence[CatalogItem]) -> CatalogArrays:
        return cls(
            np.array([it.id for it in items], dtype=np.int64),
            np.array([it.price_cents for it in items], dtype=np.int64),
            np.array([it.year or 0 for it in items], dtype=np.int64),
            np.array([[g in it.genres for g in GENRES] for it in items], dtype=bool).reshape(
                len(items), len(GENRES)
            ),
        )

    def mask(
        self, prefs: Preferences, exclude_ids: Sequence[int] = (), genres_needed: int | None = None
    ) -> np.ndarray:
        """Which rows pass ``prefs``' hard filters (genres, excluded genres, price ceiling,
        years) and are not in ``exclude_ids``. A row needs every one of ``prefs.genres``, or
        ``genres_needed`` of them when given (the recommender's close matches)."""
        mask = np.ones(len(self.ids), dtype=bool)
        if prefs.genres:
            cols = [GENRES.index(g) for g in prefs.genres if g in GENRES]
            needed = len(cols) if genres_needed is None else min(genres_needed, len(cols))
            mask &= self.genres[:, cols].sum(axis=1) >= needed
        excluded = [GENRES.index(g) for g in prefs.effective_excluded if g in GENRES]
        if excluded:
            mask &= ~self.genres[:, excluded].any(axis=1)
        if prefs.price_max is not None:
            mask &= self.prices <= round(prefs.price_max * 100)
        if prefs.year_range:
            first, last = prefs.year_range
            mask &= (self.years >= first) & (self.years <= last)
        if exclude_ids and len(self.ids):
            mask &= ~np.isin(self.ids, np.asarray(list(exclude_ids), dtype=np.int64))
        return mask


@dataclass(frozen=True)
class TrainedRows:
    """What the overlay needs from the trained model: its catalog (by id) and the rows it
    learned for each product."""

    position: dict[int, int]
    items: Sequence[CatalogItem]
    collab: np.ndarray
    collab_bias: np.ndarray
    text: np.ndarray

    @property
    def new_item_bias(self) -> float:
        if not len(self.collab_bias):
            return 0.0
        return float(np.quantile(self.collab_bias, NEW_ITEM_BIAS_QUANTILE))


@dataclass(frozen=True)
class CatalogOverlay:
    """Products created or changed since training (``items``, with their index rows) and which
    trained rows they hide, as of catalog ``version``."""

    version: int
    hidden: np.ndarray  # bool over the trained rows: changed or gone since training
    items: tuple[CatalogItem, ...] = ()
    collab: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    collab_bias: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    text: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    arrays: CatalogArrays = field(default_factory=lambda: CatalogArrays.of(()))
    index: ItemIndex | None = None

    @classmethod
    def empty(cls, trained_items: int, version: int) -> CatalogOverlay:
        return cls(version, np.zeros(trained_items, dtype=bool))

    @property
    def position(self) -> dict[int, int]:
        return {item.id: pos for pos, item in enumerate(self.items)}

    def with_changes(
        self, trained: TrainedRows, changes: Sequence[CatalogChange], version: int
    ) -> CatalogOverlay:
        """This overlay with ``changes`` (in write order; the last change of a product wins)
        applied, as of ``version``."""
        latest = {item.id: (item, True) for item in self.items}
        for change in changes:
            latest[change.item.id] = (change.item, change.active)
        hidden = self.hidden.copy()
        for product_id in latest:
            pos = trained.position.get(product_id)
            if pos is not None:
                hidden[pos] = True
        kept = [item for item, active in latest.values() if active]
        return self._build(trained, kept, hidden, version)

    def _build(
        self, trained: TrainedRows, items: list[CatalogItem], hidden: np.ndarray, version: int
    ) -> CatalogOverlay:
        if not items:
            return CatalogOverlay(version, hidden)
        known = self._known_text(trained, items)
        to_encode = [item for item in items if item.id not in known or known[item.id][0] != _words(item)]
        fresh = (
            encode([_words(it) for it in to_encode]) if to_encode else np.zeros((0, trained.text.shape[1]))
        )
        encoded = {item.id: fresh[row] for row, item in enumerate(to_encode)}
        collab = np.zeros((len(items), trained.collab.shape[1]), np.float32)
        bias = np.full(len(items), trained.new_item_bias, np.float32)
        text = np.zeros((len(items), trained.text.shape[1]), np.float32)
        for row, item in enumerate(items):
            pos = trained.position.get(item.id)
            if pos is not None:  # what customers did with it has not changed
                collab[row], bias[row] = trained.collab[pos], trained.collab_bias[pos]
            text[row] = encoded[item.id] if item.id in encoded else known[item.id][1]
        vectors = np.hstack([collab, bias[:, None], text]).astype(np.float32)
        return CatalogOverlay(
            version, hidden, tuple(items), collab, bias, text, CatalogArrays.of(items), ItemIndex(vectors)
        )

    def _known_text(
        self, trained: TrainedRows, items: Sequence[CatalogItem]
    ) -> dict[int, tuple[str, np.ndarray]]:
        """The words and embedding each of ``items`` had when last encoded: in this overlay, else
        in training (an embedding is computed again only when the words changed)."""
        mine = {item.id: row for row, item in enumerate(self.items)}
        known: dict[int, tuple[str, np.ndarray]] = {}
        for item in items:
            row, pos = mine.get(item.id), trained.position.get(item.id)
            if row is not None:
                known[item.id] = (_words(self.items[row]), self.text[row])
            elif pos is not None:
                known[item.id] = (_words(trained.items[pos]), trained.text[pos])
        return known


def _words(item: CatalogItem) -> str:
    """How a product is described to the text encoder (a change of it needs a new embedding)."""
    return product_text(item.title, item.year, item.genres)
