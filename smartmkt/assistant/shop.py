"""The shop assistant: everything a conversation can ask of smartmkt, with no Rasa in sight.

Rasa actions, the CLI and the web API all call this one class, so behaviour (which titles, which
offer, what gets stored) is the same whichever way a customer or a data person reaches it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from rapidfuzz import fuzz, process
from sqlalchemy import Engine

from smartmkt.catalog import CatalogItem, title_key
from smartmkt.lifecycle.hot_swap import ServedModel, warm_up
from smartmkt.offers.policy import (
    CustomerState,
    OfferDecision,
    OfferPolicy,
    ProductOffered,
    decide_offer,
)
from smartmkt.periodic import Periodic
from smartmkt.privacy.erasure import erase_customer
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.recommender import Recommender
from smartmkt.recommend.text_encoder import product_text
from smartmkt.settings import get_settings
from smartmkt.store.db import get_engine, tracker_engine
from smartmkt.store.repository import (
    CustomerHistory,
    OfferContext,
    OfferView,
    OrderView,
    StoreRepository,
)

log = logging.getLogger(__name__)


class WarmUpError(RuntimeError):
    """A served model or table failed its warm-up; the message names it."""


@dataclass(frozen=True)
class RecommendationReply:
    products: list[CatalogItem]
    offer: OfferView | None
    preferences: Preferences
    personalized: bool  # True when the customer's own history shaped the list
    scores: dict[int, float] = field(default_factory=dict)
    # The last ``close_matches`` products have only some of the genres asked for: fewer titles
    # had them all (Recommender.recommend). The reply must say so.
    close_matches: int = 0

    @property
    def exact(self) -> list[CatalogItem]:
        """The products that satisfy everything asked for."""
        return self.products[: len(self.products) - self.close_matches]

    @property
    def close(self) -> list[CatalogItem]:
        """The close matches that fill the list after them."""
        return self.products[len(self.products) - self.close_matches :]


@dataclass(frozen=True)
class Checkout:
    """Where a customer buys a title on a connected shop's site: its page, and the open offer
    (with its discount code) that applies there, if any."""

    product: CatalogItem
    url: str
    offer: OfferView | None


@dataclass(frozen=True)
class Greeting:
    known: bool
    purchases: int
    last_title: str | None


class ShopAssistant:
    """Recommendations, offers, prices, purchases, history and privacy requests for a customer.

    ``customer_ref`` is the shop's customer id: the chat sender id. Unknown ids are new
    customers; they get a store row the first time something is recorded for them.
    """

    def __init__(
        self, engine: Engine, recommender: Recommender, offer_policy: OfferPolicy | None = None
    ) -> None:
        self.repo = StoreRepository(engine)
        self.recommender = recommender
        self.offer_policy = offer_policy or OfferPolicy.load(get_settings().offer_policy)
        self._titles: tuple[int, dict[str, int]] | None = None

    # --- catalog ---------------------------------------------------------------------------
    def follow_catalog(self) -> int:
        """Bring the recommender up to the store's catalog: the products created, changed or
        gone since it was trained (or since the last call) are recommended as they are now.
        Returns how many changes it took (0: already current)."""
        since = self.recommender.catalog_version
        version, changes = self.repo.catalog_changes(since)
        if version > since:
            self.recommender.follow(changes, version)
        return len(changes)

    @property
    def _title_keys(self) -> dict[str, int]:
        """Catalog title keys to product ids, as of the recommender's catalog version."""
        version = self.recommender.catalog_version
        if self._titles is None or self._titles[0] != version:
            keys: dict[str, int] = {}
            for item in self.recommender.catalog():
                keys.setdefault(title_key(item.title), item.id)
            self._titles = (version, keys)
        return self._titles[1]

    def find_product(self, text: str) -> CatalogItem | None:
        """The catalog title a customer means by ``text`` ("star wars", "the godfahter")."""
        key = title_key(text)
        if not key:
            return None
        product_id = self._title_keys.get(key)
        if product_id is None:
            match = process.extractOne(key, list(self._title_keys), scorer=fuzz.WRatio, score_cutoff=86)
            if match is None:
                return None
            product_id = self._title_keys[match[0]]
        return self.repo.product(product_id)

    def product(self, product_id: int) -> CatalogItem | None:
        """The catalog title with id ``product_id`` (None if it left the catalog)."""
        return self.repo.product(product_id)

    def products(self, ids: list[int]) -> list[CatalogItem]:
        """The catalog titles with these ``ids``, in that order (ids not in the catalog skipped)."""
        by_id = self.repo.products_by_id(ids)
        return [by_id[i] for i in ids if i in by_id]

    # --- readiness -------------------------------------------------------------------------
    def warm_up(self) -> dict[str, float]:
        """Exercise every model and table a first recommendation turn touches, writing nothing,
        so the first customer does not pay for cold caches (lazy imports, the text encoder's
        first batch, FAISS pages, SQLite pages). Returns milliseconds per part; raises
        ``WarmUpError`` naming the (first) part that failed."""
        sample = [item.id for item in self.recommender.items[:5]]
        warmed = warm_up(
            {
                "store": lambda: (self.repo.history("warm-up"), self.repo.products_by_id(sample)),
                "recommender": lambda: self.recommender.recommend(
                    sample, Preferences(), text="a funny comedy"
                ),
                "catalog search": lambda: self.find_product(self.recommender.items[0].title),
                "purchase scores": lambda: self.repo.customer_score("warm-up"),
                "offer policy": lambda: decide_offer(
                    CustomerState(purchases=1, spend_cents=999),
                    ProductOffered(999, (), 0.5),
                    0,
                    self.offer_policy,
                ),
            }
        )
        if warmed.errors:
            name, exc = next(iter(warmed.errors.items()))
            raise WarmUpError(f"{name} failed to load: {exc}") from exc
        return warmed.ms

    # --- recommendations and offers --------------------------------------------------------
    def recommend(
        self,
        customer_ref: str,
        prefs: Preferences | None = None,
        text: str | None = None,
        k: int = 5,
        channel: str = "text",
        exclude_ids: tuple[int, ...] = (),
        with_offer: bool = True,
        like: CatalogItem | None = None,
    ) -> RecommendationReply:
        """Top-``k`` titles for the customer and at most one personalized offer on the first.

        ``customer_ref`` is the shop's customer id; ``prefs`` the stated filters (genres, price,
        years); ``text`` what the customer said beyond them; ``like`` a title they want more
        like (it becomes the query, and is never one of the picks); ``exclude_ids`` titles not
        to list again; ``channel`` ("text" or "voice") is stored with an offer;
        ``with_offer`` False makes no offer. Titles with every genre asked for come first; close
        matches fill in only when fewer than ``k`` have them all (``close_matches``)."""
        prefs = prefs or Preferences()
        if like is not None:
            text = product_text(like.title, like.year, like.genres)
            exclude_ids = (*exclude_ids, like.id)
        history = self.repo.history(customer_ref)
        recs = self.recommender.recommend(history.product_ids, prefs, text=text, k=k, exclude_ids=exclude_ids)
        products = self.products([r.product_id for r in recs])
        close = {r.product_id for r in recs if not r.matches_all}
        offer = None
        if with_offer and products:
            offer = self._offer_for(customer_ref, history, products[0], recs[0].score, channel)
        return RecommendationReply(
            products,
            offer,
            prefs,
            personalized=not history.is_new,
            scores={r.product_id: r.score for r in recs},
            close_matches=sum(p.id in close for p in products),
        )

    def _offer_for(
        self,
        customer_ref: str,
        history: CustomerHistory,
        product: CatalogItem,
        score: float,
        channel: str,
    ) -> OfferView | None:
        """The offer on the first pick: the store reads the decision's context once, the policy
        rules on it (opt-out, cap, eligibility, the rules, the budget), and the offer is written in
        that same transaction (StoreRepository.decide_offer)."""
        offered = ProductOffered(product.price_cents, tuple(product.genres), score)

        def decide(context: OfferContext) -> OfferDecision | None:
            scores = context.score
            state = CustomerState(
                purchases=len(history.product_ids),
                spend_cents=history.total_spent_cents,
                p_purchase=scores.p_purchase if scores else None,
                p_alive=scores.p_alive if scores else None,
                expected_purchases=scores.expected_purchases if scores else None,
                opted_out=context.opted_out,
                offers_last_day=context.offers_last_day,
            )
            return decide_offer(state, offered, context.budget_used_cents, self.offer_policy)

        return self.repo.decide_offer(
            customer_ref, product.id, decide, channel, timedelta(days=self.offer_policy.expiry_days)
        )

    def open_offers(self, customer_ref: str) -> list[OfferView]:
        """The open offers of ``customer_ref`` (none if they opted out of marketing)."""
        return self.repo.open_offers(customer_ref)

    def decline_offer(self, customer_ref: str, offer_id: int) -> bool:
        """Mark offer ``offer_id`` of ``customer_ref`` declined; False if it is not theirs or
        not open."""
        return self.repo.decline_offer(customer_ref, offer_id)

    # --- who the customer is ----------------------------------------------------------------
    def is_new_customer(self, customer_ref: str) -> bool:
        """``customer_ref`` has no purchase history: the assistant asks them for a genre
        before recommending."""
        return self.repo.history(customer_ref).is_new

    def is_opted_out(self, customer_ref: str) -> bool:
        """``customer_ref`` opted out of marketing: no offers, ever, until they opt in again."""
        return self.repo.is_opted_out(customer_ref)

    @staticmethod
    def contact() -> tuple[str, str]:
        """How a customer reaches the shop's people (SMARTMKT_SHOP_CONTACT) and when
        (SMARTMKT_SHOP_HOURS): there is no live inbox in the chat yet."""
        settings = get_settings()
        return settings.shop_contact, settings.shop_hours

    # --- purchases and history -------------------------------------------------------------
    def checkout(self, customer_ref: str, product_id: int) -> Checkout | None:
        """With a shop connected (SMARTMKT_SHOP_PRODUCT_URL), where ``customer_ref`` buys
        ``product_id``: its page on the shop's site and, when they have an open offer on it, the
        offer with its discount code. None without a shop: the chat buys in the demo store."""
        template = get_settings().shop_product_url
        product = self.repo.product(product_id)
        ref = self.repo.shop_ref(product_id)
        if not template or product is None or ref is None:
            return None
        offer = next((o for o in self.repo.open_offers(customer_ref) if o.product.id == product_id), None)
        return Checkout(product, template.replace("{product_id}", quote(ref, safe="")), offer)

    def purchase(self, customer_ref: str, product_id: int, channel: str = "text") -> OrderView:
        """Record that ``customer_ref`` bought ``product_id`` through ``channel``, at the price
        of their open offer on it if they have one (the offer is then accepted)."""
        return self.repo.record_purchase(customer_ref, product_id, channel)

    def order_history(self, customer_ref: str, limit: int = 5) -> tuple[int, list[OrderView]]:
        """How many orders ``customer_ref`` has, and the latest ``limit`` of them, newest first."""
        return self.repo.order_history(customer_ref, limit)

    def greeting(self, customer_ref: str) -> Greeting:
        """Whether ``customer_ref`` has bought before, how often, and their latest title."""
        total, recent = self.repo.order_history(customer_ref, limit=1)
        return Greeting(
            known=total > 0, purchases=total, last_title=recent[0].product.title if recent else None
        )

    # --- privacy ---------------------------------------------------------------------------
    def opt_out(self, customer_ref: str, channel: str = "text") -> None:
        """Record that ``customer_ref`` refused marketing (through ``channel``); their open
        offers are withdrawn."""
        self.repo.opt_out(customer_ref, channel)

    def erase(
        self, customer_ref: str, requested_by: str = "customer", senders: Sequence[str] = ()
    ) -> dict[str, int]:
        """Erase ``customer_ref`` everywhere (smartmkt.privacy.erasure): personal rows, offers,
        scores, consents, their conversations' events (``senders``: the chat's sender ids),
        console index rows and NLU reviews; orders stay for accounting but lose the link. Leaves
        an audit row with counts only, naming ``requested_by``. Returns the counts."""
        engine = self.repo.engine
        return erase_customer(engine, tracker_engine(engine), customer_ref, requested_by, senders).counts


# --- the assistant a serving process uses --------------------------------------------------------
_served_lock = threading.Lock()
_served: ServedModel[ShopAssistant] | None = None
_follower: CatalogFollower | None = None


def _build_assistant(path: Path) -> ShopAssistant:
    import torch

    torch.set_num_threads(get_settings().inference_threads)
    assistant = ShopAssistant(get_engine(), Recommender.load(path))
    try:  # the products written since it was trained, before it serves
        assistant.follow_catalog()
    except Exception:  # the store away, or not migrated yet: the CatalogFollower tries again
        log.warning("catalog: not followed yet, serving the catalog as trained", exc_info=True)
    return assistant


def served_assistant() -> ShopAssistant:
    """This process's assistant over the served recommender, built on first use (nothing loads
    at import time, so a server starts fast and tests can swap settings). It is rebuilt when
    models/manifest.json points at a newly promoted recommender, and keeps the old one if the
    new one fails to load (smartmkt.lifecycle.hot_swap). From then on a thread keeps its catalog
    current (``CatalogFollower``)."""
    global _served, _follower
    with _served_lock:
        if _served is None or _served.models_dir != get_settings().models_dir:
            _served = ServedModel(get_settings().models_dir, "recommender", _build_assistant)
        if _follower is None:
            _follower = CatalogFollower(get_settings().catalog_poll_s)
            _follower.start()
    return _served.get()


class CatalogFollower(Periodic):
    """Every ``poll_s`` seconds, brings the served assistant's recommender up to the store's
    catalog (``ShopAssistant.follow_catalog``): a product the shop API or an import created or
    changed is recommendable within about that long, in every replica, with no retrain. One
    small read per poll (the catalog's version) while nothing changes."""

    def __init__(self, poll_s: float) -> None:
        failed = "catalog: could not follow the store's changes"
        super().__init__("smartmkt-catalog", poll_s, _follow_served, failed)


def _follow_served() -> None:
    served = _served
    if served is not None and served.path is not None:
        taken = served.get().follow_catalog()
        if taken:
            log.info("catalog: %d product changes followed", taken)


def served_versions() -> dict[str, str | None]:
    """The model versions this process serves now (their artifact folders), after looking at
    the registry once more: what a replica's /health names, so a promotion can be seen to have
    reached every replica."""
    with contextlib.suppress(FileNotFoundError):
        served_assistant()
    path = _served.path if _served is not None else None
    return {"recommender": path.name if path else None}
