"""Console accounts: argon2id password hashes, two roles, and a login check that takes the same
time whether or not the account exists (so it does not tell which e-mails have accounts).

Roles: "marketer" reviews conversations, offers and models; "admin" also manages users.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select

from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import ConsoleUser

ROLES = ("marketer", "admin")
MIN_PASSWORD = 12
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("not a real password, only spends the same time")


class UserError(ValueError):
    """A user that cannot be created as asked (bad e-mail, role or password, or a duplicate)."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: str
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _view(row: ConsoleUser) -> User:
    return User(row.id, row.email, row.role, as_utc(row.created_at))


def create_user(engine: Engine, email: str, password: str, role: str = "marketer") -> User:
    email = email.strip().lower()
    if not _EMAIL.match(email) or len(email) > 254:
        raise UserError(f"{email!r} is not an e-mail address")
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must be at least {MIN_PASSWORD} characters")
    with session_scope(engine) as session:
        if session.scalar(select(ConsoleUser.id).where(ConsoleUser.email == email)) is not None:
            raise UserError(f"a user {email} exists already")
        row = ConsoleUser(email=email, password_hash=_hasher.hash(password), role=role, created_at=utcnow())
        session.add(row)
        session.flush()
        return _view(row)


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The user if the password is right (a hash made with older parameters is upgraded)."""
    with session_scope(engine) as session:
        row = session.scalar(select(ConsoleUser).where(ConsoleUser.email == email.strip().lower()))
        if row is None or row.disabled:
            with contextlib.suppress(VerificationError):
                _hasher.verify(_DUMMY_HASH, password)  # the same work as a real check
            return None
        try:
            _hasher.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        return _view(row)


def list_users(engine: Engine) -> list[User]:
    with session_scope(engine) as session:
        return [_view(r) for r in session.scalars(select(ConsoleUser).order_by(ConsoleUser.id))]
