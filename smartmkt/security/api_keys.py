"""The shop API's keys: one per shop integration, each with scopes and a rate limit.

A key reads ``smk_<prefix>_<secret>``: the prefix (8 characters) is public and finds the key's
row; the whole key is random (48 bytes of ``secrets``), shown once when it is created, and only
its SHA-256 is stored. A slow password hash (argon2, as the console's passwords use) protects
low-entropy secrets that people choose; these are 384-bit random strings nobody can guess, so a
fast hash loses nothing and keeps each API call cheap (GitHub and Stripe hash their tokens the
same way).

Each key may make ``rate_per_minute`` requests per calendar minute. They are counted in the
database (``api_key_minutes``, one row per key and minute, raised by one atomic upsert), so every
app replica counts the same requests. A fixed window: a key may make up to twice its rate across
the turn of a minute.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from smartmkt.store.clock import utcnow
from smartmkt.store.db import dialect_insert
from smartmkt.store.models import ApiKey, ApiKeyMinute

KEY_START = "smk_"
PREFIX_LENGTH = 8
SCOPES: dict[str, str] = {
    "catalog:write": "create and update products (PUT /api/v1/products/{id})",
    "customers:write": "create and update customers (PUT /api/v1/customers/{id})",
    "orders:write": "add orders (POST /api/v1/orders)",
    "offers:read": "check discount codes at checkout (GET /api/v1/offers/{code})",
    "offers:write": "record a code's use on an order (POST /api/v1/offers/{code}/redeem)",
}
DEFAULT_RATE_PER_MINUTE = 600
KEPT_MINUTES = 24 * 60  # a key's per-minute counts are kept for a day


class ApiKeyError(ValueError):
    """A key that cannot be created as asked (unknown scope, bad name or rate)."""


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is shown once and never stored."""

    id: int
    prefix: str
    key: str
    name: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class KeyInfo:
    """What a list of keys shows (never the key)."""

    id: int
    prefix: str
    name: str
    scopes: tuple[str, ...]
    rate_per_minute: int
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> KeyInfo:
        return cls(
            row.id,
            row.prefix,
            row.name,
            tuple(row.scopes.split()),
            row.rate_per_minute,
            row.created_at,
            row.revoked_at,
            row.last_used_at,
        )


@dataclass(frozen=True)
class Caller:
    """The key a request came with, once it checked out."""

    key_id: int
    prefix: str
    name: str
    scopes: frozenset[str]


class Refused(Exception):
    """Why a request's key does not let it through: ``status`` 401, 403 or 429."""

    def __init__(self, status: int, reason: str, retry_after_s: int | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.retry_after_s = status, reason, retry_after_s


def parse_scopes(text: str) -> tuple[str, ...]:
    """``orders:write,catalog:write`` (commas or spaces) as known scopes, sorted."""
    asked = {part for part in text.replace(",", " ").split() if part}
    unknown = sorted(asked - set(SCOPES))
    if unknown:
        raise ApiKeyError(f"unknown scope {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    if not asked:
        raise ApiKeyError(f"give at least one scope: {', '.join(SCOPES)}")
    return tuple(sorted(asked))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    engine: Engine, name: str, scopes: tuple[str, ...], rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
) -> NewKey:
    """A new key for one integration; the only time the key itself exists outside its holder."""
    name = name.strip()
    if not 1 <= len(name) <= 128:
        raise ApiKeyError("a key's name is 1 to 128 characters")
    if rate_per_minute < 1:
        raise ApiKeyError("the rate limit is at least 1 request per minute")
    scopes = parse_scopes(" ".join(scopes))
    alphabet = "abcdefghijkmnopqrstuvwxyz23456789"  # no 0/o, 1/l: a prefix is read aloud
    prefix = "".join(secrets.choice(alphabet) for _ in range(PREFIX_LENGTH))
    key = f"{KEY_START}{prefix}_{secrets.token_urlsafe(48)}"
    with Session(engine) as session, session.begin():
        row = ApiKey(
            prefix=prefix,
            key_hash=_digest(key),
            name=name,
            scopes=" ".join(scopes),
            rate_per_minute=rate_per_minute,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return NewKey(row.id, prefix, key, name, scopes)


def list_keys(engine: Engine) -> list[KeyInfo]:
    with Session(engine) as session:
        return [KeyInfo.of(row) for row in session.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(engine: Engine, ref: str) -> KeyInfo:
    """Revoke a key named by its id or its prefix; its next request gets a 401."""
    with Session(engine) as session, session.begin():
        query = (
            select(ApiKey).where(ApiKey.id == int(ref))
            if ref.isdigit()
            else select(ApiKey).where(ApiKey.prefix == ref)
        )
        row = session.scalars(query).first()
        if row is None:
            raise ApiKeyError(f"no API key {ref!r}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        return KeyInfo.of(row)


def authorize(engine: Engine, key: str | None, scope: str, now_s: float | None = None) -> Caller:
    """The caller behind ``key`` if it may use ``scope`` now; else ``Refused`` (401 no key or
    not a live key, 403 the key lacks the scope, 429 over its rate). One transaction: the key
    is read, and the request counted, together."""
    if not key:
        raise Refused(401, "missing API key: send it as 'Authorization: Bearer smk_...'")
    prefix = _prefix_of(key)
    now_s = time.time() if now_s is None else now_s
    minute = int(now_s // 60)
    with Session(engine) as session, session.begin():
        row = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first() if prefix else None
        if row is None or not hmac.compare_digest(row.key_hash, _digest(key)):
            raise Refused(401, "unknown API key")
        if row.revoked_at is not None:
            raise Refused(401, "this API key was revoked")
        scopes = frozenset(row.scopes.split())
        if scope not in scopes:
            raise Refused(
                403, f"this API key lacks the scope {scope!r} (it has: {', '.join(sorted(scopes))})"
            )
        made = _count_request(session, row.id, minute)
        if made > row.rate_per_minute:
            retry = max(1, int((minute + 1) * 60 - now_s) + 1)
            raise Refused(429, f"rate limit: {row.rate_per_minute} requests per minute for this key", retry)
        if made == 1:  # "last used" to the minute: one write a minute, not one a request
            session.execute(update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=utcnow()))
        return Caller(row.id, row.prefix, row.name, scopes)


def _prefix_of(key: str) -> str | None:
    if not key.startswith(KEY_START):
        return None
    prefix, sep, _ = key[len(KEY_START) :].partition("_")
    return prefix if sep and len(prefix) == PREFIX_LENGTH else None


def _count_request(session: Session, key_id: int, minute: int) -> int:
    """This key's requests in ``minute``, this one included (one atomic upsert)."""
    insert = dialect_insert(session, ApiKeyMinute).values(key_id=key_id, minute=minute, requests=1)
    made = session.execute(
        insert.on_conflict_do_update(
            index_elements=["key_id", "minute"], set_={"requests": ApiKeyMinute.requests + 1}
        ).returning(ApiKeyMinute.requests)
    ).scalar_one()
    if made == 1:  # the key's first request this minute: forget its counts of a day ago
        session.execute(
            delete(ApiKeyMinute).where(
                ApiKeyMinute.key_id == key_id, ApiKeyMinute.minute < minute - KEPT_MINUTES
            )
        )
    return int(made)
