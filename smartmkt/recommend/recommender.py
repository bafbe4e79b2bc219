"""The hybrid recommender: sequential + collaborative + text item vectors, FAISS retrieval,
catalog filters.

Item vector  = [sequence item vector, collaborative embedding, item bias, MiniLM text embedding].
Query vector = [transformer over the customer's purchases in order, m * mean embedding of the
                purchases (the latest weighing most), 1, w * text query].
So one inner product adds "what customers buy next after this sequence" (sequential.py), "what
people who bought these buy" (collaborative.py), popularity, and "what the customer just
described". New customers have no history: the bias (popularity) and the text carry the ranking.
The index's best candidates are then re-ranked with an item-to-item term (item_item.py).
Files are .npz with allow_pickle=False plus a JSON manifest: no pickle.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from smartmkt.catalog import CatalogChange, CatalogItem
from smartmkt.recommend import sequential
from smartmkt.recommend.collaborative import CollaborativeConfig, train_item_embeddings
from smartmkt.recommend.index import ItemIndex
from smartmkt.recommend.item_item import RERANK_CANDIDATES, WEIGHT, ItemItem
from smartmkt.recommend.live_catalog import CatalogArrays, CatalogOverlay, TrainedRows
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.sequential import SequenceConfig, SequenceEncoder
from smartmkt.recommend.text_encoder import encode, product_text

log = logging.getLogger(__name__)

ARRAYS_FILE = "recommender.npz"
META_FILE = "recommender.json"


@dataclass(frozen=True)
class Recommendation:
    product_id: int
    score: float
    cf_score: float
    text_score: float
    matches_all: bool = True  # False: a close match, with some of the genres asked for


# The mean-embedding part next to the sequential one, and how much an earlier purchase counts in
# that mean (one bought n purchases back weighs MEAN_DECAY ** n: what EASE fed recency-weighted rows
# showed matters). Chosen on the validation split `smartmkt bench recommend` carves from the demo
# store's training purchases (text inputs on): weight 0.5 and an even mean gave ndcg@10 0.2565,
# 1.0 and 0.9 give 0.2649 (0.85: 0.2653, 0.8: 0.2641; weight 1.5: 0.2612, 3.0: 0.2544).
MEAN_WEIGHT = 1.0
MEAN_DECAY = 0.9
# The text profile of a customer's history, relative to a stated wish. On a validation split of
# the demo store: 0.25 cost 0.011 ndcg@10, 0.1 and below were within 0.001 of none at all.
PROFILE_SHARE = 0.1
SEQUENCE_PREFIX = "sequence/"
ITEM_ITEM_PREFIX = "item_item/"


@dataclass
class RecommenderMeta:
    dim: int
    text_weight: float
    profile_weight: float
    exact_max_items: int
    fingerprint: str = ""
    mean_weight: float = MEAN_WEIGHT
    mean_decay: float = 1.0  # models saved before it took an even mean
    sequence: dict[str, Any] | None = None  # SequenceConfig; None: no sequential part
    catalog_version: int = 0  # the store's catalog version the model was trained on


class Recommender:
    """Fit on a catalog and purchase histories; recommend for a history + preferences + text."""

    def __init__(
        self,
        items: Sequence[CatalogItem],
        cf: np.ndarray,
        bias: np.ndarray,
        text: np.ndarray,
        meta: RecommenderMeta,
        encoder: SequenceEncoder | None = None,
        item_item: ItemItem | None = None,
    ) -> None:
        self.items = list(items)
        self.item_item = item_item  # re-ranks the index's candidates; None: models saved before
        self.meta = meta
        self.ids = np.array([it.id for it in self.items], dtype=np.int64)
        self.position = {int(pid): pos for pos, pid in enumerate(self.ids)}
        self.cf, self.bias, self.text, self.encoder = cf, bias, text, encoder
        seq_vectors, seq_bias = (
            sequential.item_arrays(encoder) if encoder else (np.zeros((len(items), 0), np.float32), 0.0)
        )
        # every collaborative signal as one block: [sequence vectors, mean-pooled embeddings]
        self.collab = np.hstack([seq_vectors, cf]).astype(np.float32)
        self.collab_bias = (seq_bias + meta.mean_weight * bias if encoder else bias).astype(np.float32)
        self.arrays = CatalogArrays.of(self.items)
        self.index = ItemIndex(self.index_vectors(), exact_max_items=meta.exact_max_items)
        # products created or changed since training (smartmkt.recommend.live_catalog)
        self.overlay = CatalogOverlay.empty(len(self.items), meta.catalog_version)

    def index_vectors(self) -> np.ndarray:
        """What the FAISS index holds per item: [sequence, collaborative, bias, text]."""
        return np.hstack([self.collab, self.collab_bias[:, None], self.text]).astype(np.float32)

    def collab_queries(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """The collaborative part of the query for ``histories`` (item positions per customer,
        oldest first): [transformer output, m * recency-weighted mean embedding] (just the mean
        without a sequential part)."""
        means = np.stack([self._recent_mean(h) for h in histories])
        if self.encoder is None:
            return means.astype(np.float32)
        queries = sequential.query_vectors(self.encoder, histories)
        return np.hstack([queries, self.meta.mean_weight * means]).astype(np.float32)

    def _recent_mean(self, history: Sequence[int]) -> np.ndarray:
        """The mean of ``history``'s embeddings, the latest purchase weighing most."""
        if not len(history):
            return np.zeros(self.cf.shape[1], np.float32)
        weights = self.meta.mean_decay ** np.arange(len(history) - 1, -1, -1, dtype=np.float64)
        return (weights[:, None] * self.cf[list(history)]).sum(axis=0) / weights.sum()

    # --- the catalog since training ----------------------------------------------------------
    def follow(self, changes: Sequence[CatalogChange], version: int) -> None:
        """Take the catalog's ``changes`` up to ``version`` (products created, changed or gone
        since training): from the next search on, they are recommended (or not) as they are
        now. One reference swap, so a search in flight sees the old catalog or the new whole."""
        trained = TrainedRows(self.position, self.items, self.collab, self.collab_bias, self.text)
        self.overlay = self.overlay.with_changes(trained, changes, version)

    @property
    def catalog_version(self) -> int:
        return self.overlay.version

    def catalog(self) -> list[CatalogItem]:
        """Every product recommendable now: the trained ones still as trained, then the ones
        created or changed since."""
        hidden = self.overlay.hidden
        return [it for pos, it in enumerate(self.items) if not hidden[pos]] + list(self.overlay.items)

    # --- training --------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        items: Sequence[CatalogItem],
        histories: Sequence[Sequence[int]],
        config: CollaborativeConfig | None = None,
        exact_max_items: int = 50_000,
        progress: Callable[[str, int, int], None] | None = None,
        fingerprint: str = "",
        sequence_config: SequenceConfig | None = None,
        catalog_version: int = 0,
    ) -> Recommender:
        """Train on a catalog and its customers' purchases.

        ``items`` is the catalog; ``histories`` the product ids each customer bought, oldest
        first (ids not in ``items`` are skipped). ``config`` and ``sequence_config`` set the
        collaborative embeddings and the sequence transformer (defaults: the tuned ones);
        ``exact_max_items`` is the catalog size up to which FAISS searches exactly (above it, an
        approximate index); ``progress`` (stage, done, total) is called as each stage advances;
        ``fingerprint`` names the data and code the model was trained on (kept in its meta);
        ``catalog_version`` is the store's catalog version ``items`` were read at (the serving
        model follows the catalog's changes after it)."""
        cfg = config or CollaborativeConfig()
        seq_cfg = sequence_config or SequenceConfig()
        position = {it.id: pos for pos, it in enumerate(items)}
        encoded = [[position[p] for p in h if p in position] for h in histories]
        texts = [product_text(it.title, it.year, it.genres) for it in items]
        if progress:
            progress("text", 0, 1)
        text = encode(texts)
        if progress:
            progress("text", 1, 1)
        cf, bias = train_item_embeddings(
            encoded,
            len(items),
            cfg,
            progress=(lambda e, _loss: progress("collaborative", e, cfg.epochs)) if progress else None,
        )
        encoder = sequential.train_sequence_encoder(
            encoded,
            len(items),
            seq_cfg,
            progress=(lambda e, _loss: progress("sequence", e, seq_cfg.epochs)) if progress else None,
            features=text,
        )
        meta = RecommenderMeta(
            cfg.dim,
            1.0,
            PROFILE_SHARE,
            exact_max_items,
            fingerprint,
            mean_decay=MEAN_DECAY,
            sequence=asdict(seq_cfg),
            catalog_version=catalog_version,
        )
        model = cls(items, cf, bias, text, meta, encoder)
        sample = _Sample.of(model, encoded)
        model.meta.text_weight, model.meta.profile_weight = _balance_weights(model, sample)
        model.item_item = _scaled(ItemItem.fit(encoded, len(items)), model, sample)
        return model

    # --- persistence -----------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write the model to ``folder`` (created): arrays in an .npz, settings in JSON."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "cf": self.cf,
            "bias": self.bias,
            "text": self.text,
            "ids": self.ids,
            "prices": self.arrays.prices,
            "years": self.arrays.years,
            "titles": np.array([it.title for it in self.items]),
            "genres": np.array(["|".join(it.genres) for it in self.items]),
        }
        if self.encoder is not None:
            arrays |= {SEQUENCE_PREFIX + k: v for k, v in sequential.weights(self.encoder).items()}
        if self.item_item is not None:
            arrays |= self.item_item.arrays(ITEM_ITEM_PREFIX)
        np.savez(folder / ARRAYS_FILE, **arrays)
        (folder / META_FILE).write_text(json.dumps(asdict(self.meta), indent=2))

    @classmethod
    def load(cls, folder: Path) -> Recommender:
        """The model ``save`` wrote to ``folder``, its FAISS index rebuilt."""
        meta = RecommenderMeta(**json.loads((folder / META_FILE).read_text()))
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as data:
            items = [
                CatalogItem(int(i), str(t), int(y) or None, tuple(g for g in str(gs).split("|") if g), int(p))
                for i, t, y, gs, p in zip(
                    data["ids"], data["titles"], data["years"], data["genres"], data["prices"], strict=True
                )
            ]
            encoder = None
            if meta.sequence is not None:
                arrays = {
                    k[len(SEQUENCE_PREFIX) :]: data[k] for k in data.files if k.startswith(SEQUENCE_PREFIX)
                }
                # models saved before text inputs existed read purchases by id alone
                config = SequenceConfig(**{"text_inputs": False, **meta.sequence})
                encoder = sequential.from_weights(arrays, len(items), config, features=data["text"])
            item_item = ItemItem.from_arrays(data, ITEM_ITEM_PREFIX, len(items))
            return cls(items, data["cf"], data["bias"], data["text"], meta, encoder, item_item)

    # --- serving ---------------------------------------------------------------------------
    def _query_vector(
        self, positions: Sequence[int], text: str | None, prefs: Preferences
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query, cf part, text part) for a customer's purchases (``positions``: the trained
        items among them, oldest first), what they said (``text``, may be None) and ``prefs`` (a
        kids' title adds a hint)."""
        cf_part = self.collab_queries([positions])[0]
        hint = " ".join(
            filter(None, [text or "", "family children's movie" if prefs.for_kids else ""])
        ).strip()
        if hint:
            text_part = self.meta.text_weight * encode([hint])[0]
        elif positions:
            profile = self.text[positions].mean(axis=0)
            text_part = self.meta.profile_weight * profile / max(float(np.linalg.norm(profile)), 1e-6)
        else:
            text_part = np.zeros(self.text.shape[1], np.float32)
        query = np.concatenate([cf_part, [1.0], text_part]).astype(np.float32)
        return query, cf_part, text_part

    def recommend(
        self,
        history: Sequence[int],
        prefs: Preferences | None = None,
        text: str | None = None,
        k: int = 5,
        exclude_ids: Sequence[int] = (),
    ) -> list[Recommendation]:
        """The top ``k`` products for a customer, never one already bought.

        ``history``: product ids bought, oldest first (empty for a new customer); ``prefs``: hard
        filters and hints (default: none; a title needs every genre asked for, and when fewer
        than ``k`` have them all, titles with most of them that pass every other filter fill the
        list, ``matches_all`` False); ``text``: what they asked for in words ("a funny
        comedy"), matched against the titles' text; ``exclude_ids``: products never to list."""
        prefs = prefs or Preferences()
        overlay = self.overlay  # one catalog for the whole search
        bought = [self.position[p] for p in history if p in self.position]
        query, cf_part, text_part = self._query_vector(bought, text, prefs)
        excluded = [*history, *exclude_ids]
        found = self._search(overlay, query, cf_part, text_part, k, prefs, excluded, bought=bought)
        # Several genres mean all of them. Fewer than k titles have them all: close matches
        # (all the other filters, most of the genres first) fill the list, marked as such.
        for needed in range(len(prefs.genres) - 1, 0, -1):
            if len(found) >= k:
                break
            shown = [*excluded, *(r.product_id for r in found)]
            close = self._search(
                overlay, query, cf_part, text_part, k - len(found), prefs, shown, needed, bought
            )
            found += [replace(r, matches_all=False) for r in close]
        return found

    def similar_items(self, product_id: int, k: int = 5) -> list[int]:
        """``k`` product ids customers buy after ``product_id``, leaning to products like it in
        words (it is never one of them)."""
        overlay = self.overlay
        pos = self.position.get(product_id)
        row = overlay.position.get(product_id)
        if row is not None:  # created or changed since training: its current words
            collab = overlay.collab[row]
            cf_query = self.collab_queries([[pos]])[0] if pos is not None else np.zeros_like(collab)
            query = np.concatenate([cf_query, [1.0], self.meta.text_weight * overlay.text[row]])
        elif pos is not None:
            query = np.concatenate(
                [self.collab_queries([[pos]])[0], [1.0], self.meta.text_weight * self.text[pos]]
            )
        else:
            raise KeyError(product_id)
        zeros = np.zeros(0, np.float32)  # no parts to report: only the order counts here
        bought = [pos] if pos is not None else []
        found = self._search(
            overlay, query.astype(np.float32), zeros, zeros, k, Preferences(), [product_id], bought=bought
        )
        return [r.product_id for r in found]

    def _search(
        self,
        overlay: CatalogOverlay,
        query: np.ndarray,
        cf_part: np.ndarray,
        text_part: np.ndarray,
        k: int,
        prefs: Preferences,
        excluded: Sequence[int],
        genres_needed: int | None = None,
        bought: Sequence[int] = (),
    ) -> list[Recommendation]:
        """The top ``k`` by score of the trained index (its items the ``overlay`` snapshot has
        not hidden) and the overlay's own, passing ``prefs`` (with every genre, or
        ``genres_needed`` of them) and not ``excluded``. ``bought``: the customer's purchases
        (item positions, oldest first), for the item-to-item term the trained items get."""
        trained = Scorer(self.index, self.ids, self.collab, self.collab_bias, self.text)
        allowed = self.arrays.mask(prefs, excluded, genres_needed) & ~overlay.hidden  # changed or gone
        item_item = self.item_item
        rerank = (lambda rows: item_item.scores(bought, rows)) if item_item is not None and bought else None
        results = trained.top(query, cf_part, text_part, k, allowed, rerank)
        if overlay.index is not None:
            own = Scorer(overlay.index, overlay.arrays.ids, overlay.collab, overlay.collab_bias, overlay.text)
            results += own.top(
                query, cf_part, text_part, k, overlay.arrays.mask(prefs, excluded, genres_needed)
            )
        results.sort(key=lambda r: r.score, reverse=True)
        return results[:k]


@dataclass(frozen=True)
class Scorer:
    """One searchable set of items (the trained index, or the overlay's): its index and the
    parts of each item's vector a score is made of."""

    index: ItemIndex
    ids: np.ndarray
    collab: np.ndarray
    collab_bias: np.ndarray
    text: np.ndarray

    def top(
        self,
        query: np.ndarray,
        cf_part: np.ndarray,
        text_part: np.ndarray,
        k: int,
        allowed: np.ndarray,
        rerank: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> list[Recommendation]:
        """The top ``k`` ``allowed`` items for ``query``, each with its collaborative and text
        parts (0.0 when ``cf_part`` / ``text_part`` is empty). ``rerank``: what to add to the
        scores of the items at some rows (the item-to-item term): the index then finds
        ``RERANK_CANDIDATES`` candidates and the best ``k`` of them after the addition win."""
        if not allowed.any():
            return []
        wanted = max(k, RERANK_CANDIDATES) if rerank else k
        scores, rows = self.index.search(query, wanted, allowed=allowed)
        keep = rows[0] >= 0
        found_rows, found_scores = rows[0][keep], scores[0][keep]
        added = rerank(found_rows) if rerank else np.zeros(len(found_rows), np.float32)
        order = np.argsort(-(found_scores + added), kind="stable")[:k]
        found = []
        for i in order:
            row = found_rows[i]
            cf_score = float(self.collab[row] @ cf_part + self.collab_bias[row]) if len(cf_part) else 0.0
            text_score = float(self.text[row] @ text_part) if len(text_part) else 0.0
            found.append(
                Recommendation(
                    int(self.ids[row]),
                    float(found_scores[i] + added[i]),
                    cf_score + float(added[i]),
                    text_score,
                )
            )
        return found


@dataclass(frozen=True)
class _Sample:
    """Some training customers' histories and the collaborative (index) scores they give every
    item: what the other parts' weights are measured against, computed once per fit."""

    histories: list[Sequence[int]]
    cf_scores: np.ndarray  # (customers, items)

    @classmethod
    def of(cls, model: Recommender, histories: Sequence[Sequence[int]], seed: int = 3) -> _Sample | None:
        """Up to 200 customers with a purchase (None: no customer has one)."""
        rng = np.random.default_rng(seed)
        users = [h for h in histories if h]
        if not users:
            return None
        sample = [users[i] for i in rng.choice(len(users), size=min(200, len(users)), replace=False)]
        return cls(sample, model.collab_queries(sample) @ model.collab.T + model.collab_bias)


def _scaled(item_item: ItemItem, model: Recommender, sample: _Sample | None) -> ItemItem:
    """``item_item`` scaled so that its scores weigh ``WEIGHT`` of the index scores' spread,
    both measured on ``sample`` over the whole catalog."""
    if sample is None or item_item.weights.nnz == 0:
        return item_item
    every = np.arange(len(model.items))
    own = np.stack([item_item.scores(h, every) for h in sample.histories])
    return replace(item_item, scale=WEIGHT * float(sample.cf_scores.std() / max(float(own.std()), 1e-9)))


def _balance_weights(model: Recommender, sample: _Sample | None) -> tuple[float, float]:
    """Scale text similarity to the spread of collaborative scores.

    A stated wish ("funny and short") weighs as much as the whole purchase history; the history's
    own text profile weighs PROFILE_SHARE of that, as a tie-breaker.
    """
    if sample is None:
        return 1.0, PROFILE_SHARE
    profiles = np.stack([model.text[h].mean(axis=0) for h in sample.histories])
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True)
    text_scores = profiles @ model.text.T
    ratio = float(sample.cf_scores.std() / max(text_scores.std(), 1e-6))
    return ratio, PROFILE_SHARE * ratio
