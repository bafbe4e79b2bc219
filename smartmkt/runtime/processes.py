"""The three processes of a running smartmkt, defined once for `smartmkt run` and the tests.

app      smartmkt FastAPI app (NLU /model/parse, API)     .venv      :8000
actions  Rasa SDK action server running actions/          .venv      :5055
rasa     Rasa Open Source server (REST + socket.io)       .venv-bot  :5005
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

import httpx

from smartmkt.security.secrets import local_secret
from smartmkt.settings import Settings
from smartmkt.store import model_registry


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    command: list[str]
    cwd: Path
    env: dict[str, str]
    health_url: str
    user: str | None = None  # run as this user (PostgreSQL refuses root), else as the caller
    # how it is told to stop: PostgreSQL's SIGTERM waits for every client to leave ("smart"
    # shutdown), SIGINT disconnects them ("fast"), which is what stopping a cluster means
    stop_signal: int = signal.SIGTERM


def settings_env(settings: Settings) -> dict[str, str]:
    """Every setting as the ``SMARTMKT_<FIELD>`` variable it is read from, so a process started
    with it sees the same settings as its launcher (a cluster's chat socket URL, its engines)."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        env[f"SMARTMKT_{name.upper()}"] = text
    return env


def service_env(settings: Settings) -> dict[str, str]:
    """Environment shared by all processes: settings, plus the URLs bot/endpoints.yml reads."""
    env = {
        **os.environ,
        **settings_env(settings),
        "SMARTMKT_VAR_DIR": str(settings.var_dir),
        "SMARTMKT_MODELS_DIR": str(settings.models_dir),
        "SMARTMKT_DATABASE_URL": settings.resolved_database_url,
        "SMARTMKT_HOST": settings.host,
        "SMARTMKT_APP_PORT": str(settings.app_port),
        "SMARTMKT_ACTION_PORT": str(settings.action_port),
        "SMARTMKT_RASA_PORT": str(settings.rasa_port),
        "SMARTMKT_NLU_URL": settings.rasa_nlu_url,
        "SMARTMKT_ACTION_URL": settings.rasa_action_url,
        # Rasa gets the tracker store as one full URL (the store's database by default).
        "SMARTMKT_TRACKER_DIALECT": settings.tracker_dialect,
        "SMARTMKT_TRACKER_DB": settings.tracker_db,
        "SMARTMKT_TRACKER_URL": settings.rasa_tracker_url,
        **lock_store_env(settings),
        **event_broker_env(settings),
        "SMARTMKT_REDIS_URL": settings.redis_url,
        "SMARTMKT_AMQP_URL": settings.amqp_url,
        # What Rasa's tracker store masks (bot/redacting_store.py).
        "SMARTMKT_REDACT": settings.redact,
        "SMARTMKT_REDACT_PHONE_REGIONS": settings.redact_phone_regions,
        # Rasa checks customer tokens with the same secret (bot/run_rasa.py, smartmkt.security).
        "SMARTMKT_CUSTOMER_TOKEN_SECRET": local_secret(settings, "customer_token_secret"),
        "SMARTMKT_ALLOWED_ORIGINS": ",".join(settings.resolved_allowed_origins),
        "SMARTMKT_DEMO_TOKENS": "true" if settings.demo_tokens else "false",
        "SMARTMKT_ACTION_TIMEOUT_S": str(settings.action_timeout_s),
        "SMARTMKT_NLU_TIMEOUT_S": str(settings.nlu_timeout_s),
        "SMARTMKT_DB_RETRY_S": str(settings.db_retry_s),
        "SMARTMKT_DB_CONNECT_RETRY_S": str(settings.db_connect_retry_s),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
        # Rasa and TensorFlow: no telemetry, quiet logs, no GPU probing.
        "RASA_TELEMETRY_ENABLED": "false",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "CUDA_VISIBLE_DEVICES": "",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
    }
    return env


def lock_store_env(settings: Settings) -> dict[str, str]:
    """What bot/endpoints.yml's lock_store reads: Redis when ``redis_url`` is set, else Rasa's
    in-memory lock store (one Rasa process)."""
    if not settings.redis_url:
        return {
            "SMARTMKT_LOCK_STORE": "in_memory",
            "SMARTMKT_REDIS_HOST": "",
            "SMARTMKT_REDIS_PORT": "0",
            "SMARTMKT_REDIS_DB": "0",
        }
    parts = _engine_url("SMARTMKT_REDIS_URL", settings.redis_url, "redis://host:port/db")
    return {
        "SMARTMKT_LOCK_STORE": "redis",
        "SMARTMKT_REDIS_HOST": str(parts.hostname),
        "SMARTMKT_REDIS_PORT": str(parts.port or 6379),
        "SMARTMKT_REDIS_DB": parts.path.strip("/") or "0",
    }


def _engine_url(variable: str, url: str, shape: str) -> SplitResult:
    """``url`` split, or a ValueError naming ``variable`` if it is not of the ``shape`` given."""
    parts = urlsplit(url)
    if parts.scheme != shape.split(":")[0] or not parts.hostname:
        raise ValueError(f"{variable} must look like {shape}, not {url!r}")
    return parts


def event_broker_env(settings: Settings) -> dict[str, str]:
    """What bot/endpoints.yml's event_broker reads: RabbitMQ when ``amqp_url`` is set (Rasa's
    pika broker, publishing to the queue the console's consumer reads), else no broker."""
    if not settings.amqp_url:
        return {
            "SMARTMKT_EVENT_BROKER": "event_brokers.NoEventBroker",
            "SMARTMKT_AMQP_HOST": "",
            "SMARTMKT_AMQP_PORT": "0",
            "SMARTMKT_AMQP_USER": "",
            "SMARTMKT_AMQP_PASSWORD": "",
        }
    parts = _engine_url("SMARTMKT_AMQP_URL", settings.amqp_url, "amqp://user:password@host:port/")
    return {
        "SMARTMKT_EVENT_BROKER": "pika",
        "SMARTMKT_AMQP_HOST": str(parts.hostname),
        "SMARTMKT_AMQP_PORT": str(parts.port or 5672),
        "SMARTMKT_AMQP_USER": unquote(parts.username or "guest"),
        "SMARTMKT_AMQP_PASSWORD": unquote(parts.password or "guest"),
    }


def service_specs(settings: Settings) -> list[ServiceSpec]:
    root = settings.project_root
    venv, bot_venv = root / ".venv" / "bin", root / ".venv-bot" / "bin"
    env = service_env(settings)
    core_model = model_registry.served_path(settings.models_dir, "rasa_core")
    host = settings.host
    return [
        ServiceSpec(
            "app",
            [
                str(venv / "uvicorn"),
                "--factory",
                "smartmkt.web.app:create_app",
                "--host",
                host,
                "--port",
                str(settings.app_port),
                "--log-level",
                "warning",
                # slow or idle clients: idle keep-alive connections closed after 5 s, request
                # headers capped at 16 KiB (bodies: smartmkt.security.http), bounded connections
                "--timeout-keep-alive",
                "5",
                "--h11-max-incomplete-event-size",
                "16384",
                "--limit-concurrency",
                "512",
                *(
                    ["--forwarded-allow-ips", settings.forwarded_allow_ips]
                    if settings.forwarded_allow_ips
                    else []
                ),
            ],
            root,
            env,
            f"{settings.app_url}/health",
        ),
        ServiceSpec(
            "actions",
            [
                str(venv / "python"),
                "-m",
                "actions.action_server",  # rasa_sdk, with the actions on worker threads
                "--actions",
                "actions",
                "--port",
                str(settings.action_port),
                # no endpoints file: the action server's only use for one is tracing, which is
                # off (it logged "Failed to read endpoint configuration" on every start)
                "--endpoints",
                "",
            ],
            root,
            # rasa-sdk listens on 0.0.0.0 unless SANIC_HOST says otherwise; it trusts the customer
            # Rasa verified (metadata.customer), so only Rasa may reach it: the configured host
            {**env, "SANIC_HOST": host},
            f"http://{host}:{settings.action_port}/health",
        ),
        ServiceSpec(
            "rasa",
            [
                str(bot_venv / "python"),
                "run_rasa.py",
                "run",
                "--model",
                str(core_model),
                "--endpoints",
                "endpoints.yml",
                "--credentials",
                "credentials.yml",
                "--interface",
                host,
                "--port",
                str(settings.rasa_port),
                # Rasa's CORS and its socket.io answer the product's pages and the shop's listed
                # sites only (bot/run_rasa.py checks the socket's Origin)
                "--cors",
                *settings.resolved_allowed_origins,
                # Rasa's HTTP API (trackers, models) only when asked for, and then with a token
                *(
                    ["--enable-api", "--auth-token", local_secret(settings, "rasa_auth_token")]
                    if settings.rasa_enable_api
                    else []
                ),
            ],
            settings.bot_dir,
            env,
            f"{settings.rasa_url}/",
        ),
    ]


def healthy(url: str, timeout: float = 2.0) -> bool:
    """One health check of ``url`` within ``timeout`` seconds, by its scheme: ``http(s)`` answers
    200, ``tcp`` accepts a connection, ``epmd`` lists its names, ``redis`` answers PING with
    PONG, ``amqp`` answers the AMQP 0-9-1 protocol header with Connection.Start, ``postgresql``
    accepts a login. False on any failure."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        try:
            return httpx.get(url, timeout=timeout).status_code == 200
        except httpx.HTTPError:
            return False
    if parts.scheme == "tcp":  # something accepts connections there
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=timeout).close()
            return True
        except OSError:
            return False
    if parts.scheme == "redis":
        return _answer(parts, b"*1\r\n$4\r\nPING\r\n", timeout).startswith(b"+PONG")
    if parts.scheme == "epmd":  # Erlang's port mapper answers NAMES_REQ with its own port first
        return len(_answer(parts, b"\x00\x01n", timeout)) >= 4
    if parts.scheme == "amqp":
        return _answer(parts, b"AMQP\x00\x00\x09\x01", timeout)[:1] == b"\x01"  # a method frame
    if parts.scheme.split("+")[0] == "postgresql":
        return _accepts_login(url, timeout)
    raise ValueError(f"no health check for {parts.scheme!r} URLs: {url}")


def _answer(parts: SplitResult, request: bytes, timeout: float) -> bytes:
    """What a TCP server at ``parts`` first says to ``request`` (b"" when it is not there)."""
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as conn:
            conn.sendall(request)
            return conn.recv(64)
    except OSError:
        return b""


def _accepts_login(url: str, timeout: float) -> bool:
    import psycopg

    scheme, rest = url.split("://", 1)  # SQLAlchemy's postgresql+psycopg:// as libpq spells it
    try:
        with psycopg.connect(f"{scheme.split('+')[0]}://{rest}", connect_timeout=max(1, round(timeout))):
            return True
    except psycopg.Error:
        return False


def wait_healthy(urls: list[str], timeout: float = 240.0) -> dict[str, bool]:
    """Poll each URL until it answers 200, or the timeout passes."""
    deadline = time.monotonic() + timeout
    ready = dict.fromkeys(urls, False)
    while time.monotonic() < deadline and not all(ready.values()):
        for url in ready:
            ready[url] = ready[url] or healthy(url)
        time.sleep(0.5)
    return ready
