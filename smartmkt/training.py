"""Train what the product serves (NLU, recommender, Rasa dialogue), skipping what is current.

Every function takes a ``progress(label, done, total)`` callback so the CLI can draw bars and
tests can stay quiet.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from smartmkt import registry
from smartmkt.settings import Settings
from smartmkt.store.db import session_scope
from smartmkt.store.models import Order
from smartmkt.store.repository import StoreRepository

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainResult:
    kind: str
    path: Path
    fingerprint: str
    skipped: bool


def _quiet(_label: str, _done: int, _total: int) -> None:
    return None


PACKAGE_DIR = Path(__file__).resolve().parent


# The modules whose code shapes a trained artifact: changing one retrains (serving code does not).
TRAINING_CODE = {
    "nlu": ("train.py", "model.py", "encoding.py", "augment.py", "data.py"),
    "recommend": ("recommender.py", "collaborative.py", "text_encoder.py", "index.py"),
    "predict": ("model.py", "train.py", "history.py", "scoring.py"),
}


def _code_files(package: str) -> list[Path]:
    return [PACKAGE_DIR / package / name for name in TRAINING_CODE[package]]


def _hash_files(paths: list[Path], *extra: str) -> str:
    digest = hashlib.sha256("|".join(extra).encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(path.parents[1])).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def catalog_titles(engine: Engine) -> list[str]:
    return [p.title for p in StoreRepository(engine).all_products()]


def _reuse(settings: Settings, kind: str, target: Path, fingerprint: str) -> bool:
    """True when ``target`` is served already, or was restored from the local model cache."""
    if registry.is_current(settings.models_dir, kind, fingerprint):
        return True
    if registry.restore_from_cache(settings.model_cache_dir, kind, target):
        registry.record(settings.models_dir, kind, target, fingerprint, restored_from_cache=True)
        return True
    return False


def _lock_lines(settings: Settings) -> list[str]:
    """The bot environment's pinned versions: a Rasa upgrade retrains the dialogue model."""
    lock = settings.bot_dir / "requirements.lock"
    return lock.read_text().splitlines() if lock.exists() else []


# --- NLU ------------------------------------------------------------------------------------
def train_nlu_model(
    settings: Settings, engine: Engine, force: bool = False, progress: Progress = _quiet
) -> TrainResult:
    from smartmkt.nlu.data import load_nlu
    from smartmkt.nlu.train import TrainConfig, train_nlu

    config = TrainConfig()
    data_dir = settings.bot_dir / "data" / "nlu"
    titles = catalog_titles(engine)
    fingerprint = _hash_files(
        [*data_dir.rglob("*.yml"), *_code_files("nlu"), PACKAGE_DIR / "catalog.py"],
        repr(config),
        *titles,
    )
    target = settings.models_dir / "nlu" / fingerprint
    if not force and _reuse(settings, "nlu", target, fingerprint):
        return TrainResult("nlu", target, fingerprint, skipped=True)
    examples = load_nlu(data_dir)
    train_nlu(
        examples,
        target,
        titles=titles,
        config=config,
        fingerprint=fingerprint,
        progress=lambda step, total, _loss: progress("nlu", step, total),
    )
    registry.record(settings.models_dir, "nlu", target, fingerprint, examples=len(examples))
    registry.save_to_cache(settings.model_cache_dir, "nlu", target)
    return TrainResult("nlu", target, fingerprint, skipped=False)


# --- recommender ----------------------------------------------------------------------------
def purchase_histories(engine: Engine) -> dict[int, list[int]]:
    """Product ids per customer, oldest first."""
    histories: dict[int, list[int]] = defaultdict(list)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Order.customer_id, Order.product_id)
            .where(Order.customer_id.is_not(None))
            .order_by(Order.customer_id, Order.ordered_at, Order.id)
        )
        for customer_id, product_id in rows:
            histories[int(customer_id or 0)].append(int(product_id))
    return histories


def store_fingerprint(engine: Engine) -> str:
    with session_scope(engine) as session:
        orders, last_id = session.execute(select(func.count(Order.id), func.max(Order.id))).one()
    products = StoreRepository(engine).all_products()
    digest = hashlib.sha256(f"{orders}:{last_id}".encode())
    for p in products:
        digest.update(f"{p.id}|{p.title}|{p.year}|{'|'.join(p.genres)}|{p.price_cents}".encode())
    return digest.hexdigest()[:16]


def train_recommender_model(
    settings: Settings, engine: Engine, force: bool = False, progress: Progress = _quiet
) -> TrainResult:
    from smartmkt.recommend.collaborative import CollaborativeConfig
    from smartmkt.recommend.recommender import CatalogItem, Recommender

    config = CollaborativeConfig()
    fingerprint = _hash_files(
        _code_files("recommend"),
        store_fingerprint(engine),
        repr(config),
        str(settings.faiss_exact_max_items),
    )
    target = settings.models_dir / "recommender" / fingerprint
    if not force and _reuse(settings, "recommender", target, fingerprint):
        return TrainResult("recommender", target, fingerprint, skipped=True)
    items = [
        CatalogItem(p.id, p.title, p.year, p.genres, p.price_cents)
        for p in StoreRepository(engine).all_products()
    ]
    if not items:
        raise RuntimeError("the catalog is empty: load data first (`smartmkt data load-demo`)")
    histories = list(purchase_histories(engine).values())
    model = Recommender.fit(
        items,
        histories,
        config,
        exact_max_items=settings.faiss_exact_max_items,
        progress=progress,
        fingerprint=fingerprint,
    )
    model.save(target)
    registry.record(
        settings.models_dir, "recommender", target, fingerprint, items=len(items), customers=len(histories)
    )
    registry.save_to_cache(settings.model_cache_dir, "recommender", target)
    return TrainResult("recommender", target, fingerprint, skipped=False)


# --- purchase prediction ------------------------------------------------------------------
def train_purchase_model(
    settings: Settings, engine: Engine, force: bool = False, progress: Progress = _quiet
) -> TrainResult:
    """The purchase model on the store's history; every customer's scores are rewritten either
    way (a reused model still scores the store as it is now)."""
    from smartmkt.predict import scoring

    fingerprint = _hash_files(_code_files("predict"), store_fingerprint(engine))
    target = settings.models_dir / "purchase" / fingerprint
    skipped = not force and _reuse(settings, "purchase", target, fingerprint)
    progress("purchase model", 0, 2)
    if skipped:
        from smartmkt.predict.history import purchase_days

        model, days = scoring.load(target), purchase_days(engine)
    else:
        model, days = scoring.train_on_store(engine)
        scoring.save(model, target)
    progress("purchase model", 1, 2)
    scores = scoring.write_scores(engine, model, days, settings.purchase_horizon_days, fingerprint)
    progress("purchase model", 2, 2)
    if not skipped:
        registry.record(
            settings.models_dir,
            "purchase",
            target,
            fingerprint,
            customers=scores.customers,
            horizon_days=settings.purchase_horizon_days,
        )
        registry.save_to_cache(settings.model_cache_dir, "purchase", target)
    return TrainResult("purchase", target, fingerprint, skipped=skipped)


# --- Rasa dialogue model ------------------------------------------------------------------
def bot_python(settings: Settings) -> Path:
    path = settings.project_root / ".venv-bot" / "bin" / "python"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make setup`")
    return path


def core_inputs(settings: Settings) -> list[Path]:
    bot = settings.bot_dir
    return [
        bot / "domain.yml",
        bot / "config.yml",
        *sorted((bot / "data" / "rules").glob("*.yml")),
        *sorted((bot / "data" / "stories").glob("*.yml")),
    ]


def train_core_model(settings: Settings, force: bool = False, progress: Progress = _quiet) -> TrainResult:
    """``rasa train core`` in the bot environment; NLU is served by smartmkt, not trained here."""
    fingerprint = _hash_files(core_inputs(settings), *_lock_lines(settings))
    out_dir = settings.models_dir / "rasa"
    target = out_dir / f"{fingerprint}.tar.gz"
    if not force and _reuse(settings, "rasa_core", target, fingerprint):
        return TrainResult("rasa_core", target, fingerprint, skipped=True)
    progress("core", 0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    bot = settings.bot_dir
    subprocess.run(
        [
            str(bot_python(settings)),
            "-m",
            "rasa",
            "train",
            "core",
            "--domain",
            "domain.yml",
            "--config",
            "config.yml",
            "--stories",
            "data",
            "--out",
            str(out_dir),
            "--fixed-model-name",
            fingerprint,
        ],
        check=True,
        cwd=bot,
    )
    registry.record(settings.models_dir, "rasa_core", target, fingerprint)
    registry.save_to_cache(settings.model_cache_dir, "rasa_core", target)
    progress("core", 1, 1)
    return TrainResult("rasa_core", target, fingerprint, skipped=False)
