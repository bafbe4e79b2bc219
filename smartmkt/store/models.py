"""The SQL store's tables as SQLAlchemy 2.x typed models.

Money is stored as integer cents so sums never drift; times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of every smartmkt table."""


class Customer(Base):
    """A shopper. ``external_ref`` is the id the shop (and the chat's sender id) uses."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    age: Mapped[int | None] = mapped_column(Integer)
    gender: Mapped[str | None] = mapped_column(String(16))
    occupation: Mapped[str | None] = mapped_column(String(64))
    postal_code: Mapped[str | None] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32), default="chat")
    imputed: Mapped[list[str] | None] = mapped_column(JSON)  # fields filled in by a cleaning rule

    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Product(Base):
    """A catalog item. ``genres`` is a ``|``-joined list of catalog genre names."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(128), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(512), index=True)
    year: Mapped[int | None] = mapped_column(Integer, index=True)
    genres: Mapped[str] = mapped_column(String(512), default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    imputed: Mapped[list[str] | None] = mapped_column(JSON)
    # Where the title came from: "products" (a products file, the shop API's product upsert),
    # "orders" (the product name on an order line) or "placeholder" (none: "Product <id>").
    # A products file wins over an orders file (smartmkt.data.loading).
    title_source: Mapped[str | None] = mapped_column(String(16))
    # The catalog version (catalog_state) of the write that last created or changed this row:
    # serving processes follow the catalog by it (smartmkt.recommend.live_catalog). NULL: older.
    catalog_version: Mapped[int | None] = mapped_column(Integer, index=True)

    @property
    def genre_list(self) -> list[str]:
        return [g for g in self.genres.split("|") if g]

    @property
    def price(self) -> float:
        return self.price_cents / 100


class CatalogState(Base):
    """One row: the catalog's version, raised by one in each transaction that writes products
    (smartmkt.data.loading.next_catalog_version). The UPDATE holds the row's lock until commit,
    so versions commit in order and a reader that has seen version N has seen every change up
    to N."""

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class Order(Base):
    """One purchased line. ``customer_id`` becomes NULL when the customer's data is erased."""

    __tablename__ = "orders"
    __table_args__ = (
        # Few indexes on purpose: every one costs on each imported line. A customer's history
        # (customer_time), time ranges (ordered_at) and re-import detection (line_key) are
        # what queries need.
        Index("ix_orders_customer_time", "customer_id", "ordered_at"),
        Index("uq_orders_line_key", "line_key", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    discount_pct: Mapped[int] = mapped_column(Integer, default=0)
    amount_cents: Mapped[int] = mapped_column(Integer)
    ordered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="import")
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id", ondelete="SET NULL"))
    # Business key of an imported order line: "o:<order id>|<product>" or "h:<content hash>";
    # unique, so re-importing a file adds nothing twice.
    line_key: Mapped[str | None] = mapped_column(String(200))
    # none_as_null: "nothing imputed" is SQL NULL on every path (an API line, COPY, SQLite's bulk)
    imputed: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))

    customer: Mapped[Customer | None] = relationship(back_populates="orders")
    product: Mapped[Product] = relationship()


class Offer(Base):
    """A personalized offer shown to a customer, with the reason and scores behind it."""

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_customer_status", "customer_id", "status"),
        Index("uq_offers_code", "code", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    percent_off: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    rule: Mapped[str] = mapped_column(String(64))
    scores: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    channel: Mapped[str] = mapped_column(String(16), default="text")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="shown")  # shown|accepted|declined
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The discount code the shop's checkout takes (smartmkt.offers.codes): unique, unguessable,
    # bound to this offer's customer, product, discount and expiry.
    code: Mapped[str | None] = mapped_column(String(24))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeemed_order_ref: Mapped[str | None] = mapped_column(String(128))  # the shop's order id

    product: Mapped[Product] = relationship()


class CustomerScore(Base):
    """What the purchase model expects of a customer over the next ``horizon_days``; rewritten
    by ``smartmkt train purchase``. Deleted with the customer."""

    __tablename__ = "customer_scores"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    p_purchase: Mapped[float] = mapped_column(Float)  # at least one purchase in the horizon
    expected_purchases: Mapped[float] = mapped_column(Float)
    expected_spend_cents: Mapped[int] = mapped_column(Integer)
    p_alive: Mapped[float] = mapped_column(Float)
    horizon_days: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str] = mapped_column(String(32))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleUser(Base):
    """A person who logs in to the marketer console. Only an argon2 hash of the password is kept;
    ``email`` is stored lower-case so it is unique whatever the case typed."""

    __tablename__ = "console_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # "marketer" or "admin"
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _recent_index(name: str, condition: str) -> Index:
    """A partial index in list order (newest first) over the conversations where ``condition``
    holds, on both engines: a filtered console page reads only matching rows."""
    where = text(condition)
    return Index(name, "last_event_at", "sender_id", sqlite_where=where, postgresql_where=where)


class ConsoleConversation(Base):
    """One Rasa conversation (a sender id) summarised for the console by the incremental indexer
    (smartmkt/console/index.py) from Rasa's ``events`` table; rebuilt by ``smartmkt console
    reindex``. Lists run newest first on (last_event_at, sender_id); each flag filter has a partial
    index in that order, so a filtered page reads only matching rows. Text search: an FTS5 table
    (SQLite) or a GIN index (PostgreSQL) over ``search_text``, made by migration 0007."""

    __tablename__ = "console_conversations"
    __table_args__ = (
        Index("ix_console_conversations_recent", "last_event_at", "sender_id"),
        _recent_index("ix_console_conversations_voice", "voice_turns > 0"),
        _recent_index("ix_console_conversations_text", "turns > voice_turns"),
        _recent_index("ix_console_conversations_fallback", "fallback_turns > 0"),
        _recent_index("ix_console_conversations_offers", "offers_made > 0"),
        Index("ix_console_conversations_started", "started_at"),
        Index("ix_console_conversations_customer", "customer_ref", "last_event_at"),
        Index("ix_console_conversations_confidence", "min_confidence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(255), unique=True)
    customer_ref: Mapped[str] = mapped_column(String(255))  # the sender id until tokens bind customers
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_event_id: Mapped[int] = mapped_column(Integer)
    turns: Mapped[int] = mapped_column(Integer, default=0)  # customer messages
    voice_turns: Mapped[int] = mapped_column(Integer, default=0)
    fallback_turns: Mapped[int] = mapped_column(Integer, default=0)
    min_confidence: Mapped[float | None] = mapped_column(Float)
    offers_made: Mapped[int] = mapped_column(Integer, default=0)
    first_message: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text, default="")  # the customer's messages
    # indexer state: the latest customer turn was already counted as a fallback
    turn_fallback: Mapped[bool] = mapped_column(Boolean, default=False)


class ConsoleConversationDay(Base):
    """A conversation's customer turns on one UTC day: the dashboard's per-day figures and the
    date-range filter ("had a turn between from and to")."""

    __tablename__ = "console_conversation_days"
    # covering: the dashboard's per-day and range figures read the index alone
    __table_args__ = (
        Index(
            "ix_console_conversation_days_day",
            "day",
            "conversation_id",
            "voice_turns",
            "turns",
            "fallback_turns",
        ),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("console_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    voice_turns: Mapped[int] = mapped_column(Integer, default=0)
    fallback_turns: Mapped[int] = mapped_column(Integer, default=0)


class ConsoleConversationIntent(Base):
    """How many customer turns of a conversation had ``intent``, per UTC day (the intent filter,
    the list's intents)."""

    __tablename__ = "console_conversation_intents"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("console_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    intent: Mapped[str] = mapped_column(String(255), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)


class ConsoleIntentDay(Base):
    """Customer turns per intent and UTC day over all conversations: the dashboard's top intents
    read a few rows per day instead of every conversation's."""

    __tablename__ = "console_intent_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    intent: Mapped[str] = mapped_column(String(255), primary_key=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)


class ConsoleConversationOffer(Base):
    """An offer the bot showed in a conversation (from its custom payload). Not a foreign key:
    an offer erased with its customer leaves the fact that it was shown; its outcome is read from
    ``offers`` when asked, so it is always current."""

    __tablename__ = "console_conversation_offers"
    __table_args__ = (
        Index("ix_console_conversation_offers_shown", "shown_at", "offer_id"),  # covering: the dashboard
        Index("ix_console_conversation_offers_offer", "offer_id"),
    )

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("console_conversations.id", ondelete="CASCADE"), primary_key=True
    )
    offer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    shown_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    event_id: Mapped[int] = mapped_column(Integer)


class ConsoleIndexState(Base):
    """How far the conversation index has read Rasa's ``events`` (one row, name "events")."""

    __tablename__ = "console_index_state"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConsoleSeenEvent(Base):
    """An event the conversation index has folded, by key (smartmkt/console/index.py,
    ``event_key``): a hash of its sender id, type, timestamp and name, spelled in letters. RabbitMQ
    may deliver an event twice (a consumer that dies between its commit and its ack); the second
    delivery finds its key here and is not counted again. Emptied by ``smartmkt console reindex``."""

    __tablename__ = "console_seen_events"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ConsoleSession(Base):
    """A console login. Only a SHA-256 of the cookie's random token is kept; the CSRF token is
    returned to the logged-in page and must come back in ``X-CSRF-Token`` on unsafe requests."""

    __tablename__ = "console_sessions"
    __table_args__ = (
        Index("ix_console_sessions_expires", "expires_at"),
        Index("ix_console_sessions_user", "user_id"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("console_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NluReview(Base):
    """A marketer's correction of one customer message: the right intent and entities, for
    ``smartmkt nlu export-reviewed``. One review per event (a second one replaces it)."""

    __tablename__ = "nlu_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(Integer, unique=True)  # Rasa's events.id
    sender_id: Mapped[str] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str] = mapped_column(String(255))
    entities: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("console_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Consent(Base):
    """A consent decision (e.g. marketing opt-out) with when and through which channel."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_customer_purpose", "customer_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(32), default="marketing")
    granted: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(16))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ImportRun(Base):
    """One `smartmkt data import`: what it read and its report."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|completed|failed
    files: Mapped[list[str]] = mapped_column(JSON, default=list)
    report: Mapped[dict[str, object] | None] = mapped_column(JSON)


class DemoClock(Base):
    """How far the demo store's history was moved in time when it was loaded (one row).

    MovieLens' purchases end in 1998, the product's clock is today: ``smartmkt data load-demo``
    adds ``shift_days`` whole days to every demo timestamp, once, so that the last demo purchase
    falls on the day before loading. Kept so the shift is never applied twice and can be shown."""

    __tablename__ = "demo_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shift_days: Mapped[int] = mapped_column(Integer)
    source_last_day: Mapped[date] = mapped_column(Date)  # the demo's last purchase as shipped
    last_day: Mapped[date] = mapped_column(Date)  # the same purchase after the shift
    shifted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuarantinedRow(Base):
    """A source row an import set aside, with everything needed to fix and retry it."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("uq_quarantine_source_line", "source_sha", "kind", "line_number", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # customers|products|orders
    source_file: Mapped[str] = mapped_column(String(512))
    source_sha: Mapped[str] = mapped_column(String(64))
    line_number: Mapped[int] = mapped_column(Integer)
    raw: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, object] | None] = mapped_column(
        JSON(none_as_null=True)
    )  # mapped values, for a retry
    rule: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ErasureAudit(Base):
    """Proof that an erasure happened, holding no personal data (no customer id)."""

    __tablename__ = "erasure_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    requested_by: Mapped[str] = mapped_column(String(32))
    rows_deleted: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)


class LoginFailure(Base):
    """A failed console login, kept for the login rate limit (smartmkt.security.login_limit): in
    the database so every app replica counts the same failures. ``key_hash`` is the SHA-256 of
    the e-mail (lower case) and the client address, so neither is stored in clear."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_time", "key_hash", "failed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ApiKey(Base):
    """A shop integration's key to the shop API (smartmkt.security.api_keys). Only the key's
    SHA-256 is stored; ``prefix`` is the key's public part, to find the row and to name the key
    in lists and logs. ``scopes`` is a space-separated list (``orders:write catalog:write``)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(255))
    rate_per_minute: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKeyMinute(Base):
    """How many requests one API key made in one minute (minutes since the epoch): the key's
    rate limit, counted in the database so every app replica counts the same requests."""

    __tablename__ = "api_key_minutes"

    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)
    requests: Mapped[int] = mapped_column(Integer)


class WebhookReceipt(Base):
    """A shop platform's webhook delivery smartmkt processed (smartmkt.data.shop_webhooks): the
    same body again (a retry, or a replay of a captured request) is answered without being
    processed twice. ``key`` is a SHA-256 of platform and body; the body itself is not kept."""

    __tablename__ = "webhook_receipts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class WebhookEndpoint(Base):
    """A URL of the shop's that smartmkt tells about events (offer.created, offer.redeemed),
    each delivery signed with ``secret`` (smartmkt.notify.webhooks). The secret is kept to sign
    with, and shown once when the endpoint is added."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(1024))
    events: Mapped[str] = mapped_column(String(255))  # space-separated
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction that made the event happen (an
    outbox), then sent, and retried with backoff until delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the shop's id of the customer the event is about: an erasure deletes their deliveries
    customer_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # None: done
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(512))


__all__ = [
    "ApiKey",
    "ApiKeyMinute",
    "Base",
    "CatalogState",
    "Consent",
    "Customer",
    "DemoClock",
    "ErasureAudit",
    "ImportRun",
    "Offer",
    "Order",
    "Product",
    "QuarantinedRow",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookReceipt",
]
