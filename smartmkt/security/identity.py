"""Who a chat message comes from: signed, expiring customer tokens and chat sessions bound to them.

The shop's site knows its customer and issues a **customer token**: a JWT signed with HMAC-SHA256
(``SMARTMKT_CUSTOMER_TOKEN_SECRET``) whose ``sub`` is the customer reference and ``exp`` its
expiry, so any JWT library can issue one (``{"alg": "HS256"}``; no other algorithm is accepted).

The chat's **session id** (Rasa's sender id) is random and unguessable, and bound to one
customer: ``s1.<random>.<HMAC(secret, customer, random)>``. Binding needs no table (replicas
share it through the secret) and a session id says nothing about its customer. Every message to
a bound session must carry a valid token for that same customer; a message without a token to
any other sender id is a **guest** (customer ``guest:<sender id>``: a new customer with no
access to anyone's history, offers or orders).

Standard library only: Rasa's environment imports this module too (bot/run_rasa.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

SESSION_PREFIX = "s1."
GUEST_PREFIX = "guest:"
MAX_REF = 128  # characters of a customer reference
MAX_TOKEN = 2048
_SESSION = re.compile(r"^s1\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$")
_HEADER = {"alg": "HS256", "typ": "JWT"}


class Refused(Exception):
    """The message or token is not accepted (the reason is safe to show)."""


@dataclass(frozen=True)
class Customer:
    ref: str
    verified: bool  # from a token (False: a guest)

    def as_metadata(self) -> dict[str, object]:
        return {"ref": self.ref, "verified": self.verified}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise Refused("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Refused("malformed token") from exc


def _key(secret: str) -> bytes:
    if len(secret) < 32:
        raise ValueError("the customer token secret must have 32 characters or more")
    return secret.encode()


def _check_ref(ref: object) -> str:
    if not isinstance(ref, str) or not 0 < len(ref) <= MAX_REF or not ref.isprintable():
        raise Refused("invalid customer reference")
    if ref.startswith(GUEST_PREFIX):
        raise Refused("invalid customer reference")
    return ref


def issue_token(secret: str, customer_ref: str, ttl_s: float = 3600, now: float | None = None) -> str:
    """A customer token (JWT, HS256) for ``customer_ref``, valid for ``ttl_s`` seconds."""
    issued = int(now if now is not None else time.time())
    payload = {"sub": _check_ref(customer_ref), "iat": issued, "exp": issued + int(ttl_s)}
    signing_input = (
        f"{_b64(json.dumps(_HEADER, separators=(',', ':')).encode())}."
        f"{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    )
    signature = hmac.new(_key(secret), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify_token(secret: str, token: object, now: float | None = None) -> str:
    """The customer reference of a valid, unexpired token; else ``Refused``."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        raise Refused("missing or malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise Refused("malformed token")
    header_b64, payload_b64, signature_b64 = parts
    expected = hmac.new(_key(secret), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, _unb64(signature_b64)):
        raise Refused("bad token signature")
    try:
        header = json.loads(_unb64(header_b64))
        payload = json.loads(_unb64(payload_b64))
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused("malformed token") from exc
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(payload, dict):
        raise Refused("unsupported token")
    exp = payload.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise Refused("token without expiry")
    if (now if now is not None else time.time()) >= exp:
        raise Refused("token expired")
    return _check_ref(payload.get("sub"))


def _tag(secret: str, customer_ref: str, nonce: str) -> str:
    message = f"session|{customer_ref}|{nonce}".encode()
    return _b64(hmac.new(_key(secret), message, hashlib.sha256).digest())


def new_session_id(secret: str, customer_ref: str) -> str:
    """A fresh, unguessable chat session id bound to ``customer_ref``."""
    nonce = _b64(secrets.token_bytes(16))
    return f"{SESSION_PREFIX}{nonce}.{_tag(secret, _check_ref(customer_ref), nonce)}"


def is_bound_session(sender_id: object) -> bool:
    """Whether ``sender_id`` has the form of a bound session id (whoever made it)."""
    return isinstance(sender_id, str) and sender_id.startswith(SESSION_PREFIX)


def session_belongs_to(secret: str, sender_id: str, customer_ref: str) -> bool:
    match = _SESSION.match(sender_id)
    if not match:
        return False
    return hmac.compare_digest(match.group(2), _tag(secret, customer_ref, match.group(1)))


def customer_for(secret: str, sender_id: object, token: object, now: float | None = None) -> Customer:
    """The customer a message to ``sender_id`` with ``token`` (or None) speaks for, or ``Refused``.

    - a token: it must be valid and unexpired and ``sender_id`` a session bound to its customer;
    - no token, a bound session id: refused (that conversation belongs to a customer);
    - no token, any other sender id: a guest, ``guest:<sender id>``.
    """
    if not isinstance(sender_id, str) or not sender_id:
        raise Refused("missing session id")
    if token is not None and token != "":
        ref = verify_token(secret, token, now)
        if not session_belongs_to(secret, sender_id, ref):
            raise Refused("this session does not belong to the token's customer")
        return Customer(ref, verified=True)
    if is_bound_session(sender_id):
        raise Refused("this session needs its customer token")
    return Customer(guest_ref(sender_id), verified=False)


def guest_ref(sender_id: str) -> str:
    """``guest:<sender id>`` (a long id by its hash, so it fits the store's 128 characters)."""
    if len(sender_id) <= MAX_REF - 16 and sender_id.isprintable():
        return GUEST_PREFIX + sender_id
    return f"{GUEST_PREFIX}h-{hashlib.sha256(sender_id.encode('utf-8', 'replace')).hexdigest()[:40]}"
