"""Local secrets: taken from the environment (settings) when set, else generated once on first
start into ``var/secrets/<name>`` (the directory mode 700, each file mode 600; ``var/`` is
git-ignored), so a fresh ``make run`` is secure without configuration and no secret is in the repo.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from smartmkt.settings import Settings

# setting name -> the file it is kept in when not set in the environment
LOCAL = ("customer_token_secret", "rasa_auth_token")


def local_secret(settings: Settings, name: str) -> str:
    """The setting ``name`` if set, else the value kept in ``var/secrets/`` (created once)."""
    if name not in LOCAL:
        raise ValueError(f"not a secret setting: {name}")
    value = str(getattr(settings, name) or "")
    if value:
        return value
    directory = settings.var_dir / "secrets"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = directory / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48))
    return _read(path)


def _read(path: Path) -> str:
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone loosened it: tighten again
    value = path.read_text().strip()
    if len(value) < 32:
        raise RuntimeError(f"{path} holds no usable secret (32+ characters); delete it to make a new one")
    return value


def with_local_secrets(settings: Settings) -> Settings:
    """``settings`` with every secret filled in (from the environment or var/secrets/)."""
    return settings.model_copy(update={name: local_secret(settings, name) for name in LOCAL})


def signed_in(settings: Settings, customer_ref: str, ttl_s: float = 3600) -> tuple[str, str]:
    """A new chat session id for ``customer_ref`` and a token for it, as the shop's site would
    give a REST client (tests, benchmarks, ``smartmkt token``): send the session id as ``sender``
    and the token as ``metadata.customer_token``."""
    from smartmkt.security.identity import issue_token, new_session_id

    secret = local_secret(settings, "customer_token_secret")
    return new_session_id(secret, customer_ref), issue_token(secret, customer_ref, ttl_s)
