"""Train what the product serves (NLU, recommender, purchase model, Rasa dialogue), skipping
what is current, and promote a new model only when it is better than the served one beyond noise.

Each trained artifact gets a metadata.json (data fingerprint, parameters, seed, held-out
metrics, created_at). The candidate and the served model are measured on the same held-out data
(smartmkt.lifecycle.evaluation); the manifest moves to the candidate only if its primary figure beats the
served one's beyond noise on enough held-out positives (smartmkt.store.model_registry.decide), or with
``force``; otherwise the served model stays and the reason is printed. The same seed gives the
same model. Every function takes a ``progress(label, done, total)`` callback so the CLI can draw
bars and tests stay quiet.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from smartmkt.settings import Settings
from smartmkt.store import model_registry
from smartmkt.store.repository import StoreRepository
from smartmkt.store.training_data import catalog_titles, purchase_histories, store_fingerprint

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainResult:
    kind: str
    path: Path
    fingerprint: str
    skipped: bool
    promotion: model_registry.Promotion | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # the artifact was on disk already (model cache, or refused before)

    @property
    def promoted(self) -> bool:
        return self.promotion is None or self.promotion.promoted


PURCHASE_SEED = 7


def _quiet(_label: str, _done: int, _total: int) -> None:
    return None


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # smartmkt/


# The modules whose code shapes a trained artifact: changing one retrains (serving code does not).
TRAINING_CODE = {
    "nlu": ("train.py", "model.py", "encoding.py", "augment.py", "data.py"),
    "recommend": ("recommender.py", "collaborative.py", "sequential.py", "text_encoder.py", "index.py"),
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


def _reuse(settings: Settings, kind: str, target: Path, fingerprint: str, gated: bool = True) -> bool:
    """True when ``target`` is served already (with its held-out figures). Otherwise a copy from
    the local model cache (same fingerprint: same inputs, code and seed) saves the training; a
    gated kind then still goes through the promotion gate, an ungated one is served at once."""
    if model_registry.is_current(settings.models_dir, kind, fingerprint):
        # one served from before metadata.json existed goes through the gate once for its figures
        return not gated or model_registry.read_metadata(target) is not None
    restored = not target.exists() and model_registry.restore_from_cache(
        settings.model_cache_dir, kind, target
    )
    if restored and not gated:
        model_registry.record(settings.models_dir, kind, target, fingerprint, restored_from_cache=True)
        return True
    return False


def _gate(
    settings: Settings,
    engine: Engine | None,
    target: Path,
    meta: model_registry.ModelMetadata,
    force: bool,
    **info: Any,
) -> model_registry.Promotion:
    """Measure ``target`` on the held-out data, compare with the served model there (a paired
    bootstrap of the difference, smartmkt.lifecycle.evaluation.compare), promote only beyond noise.

    Raises evaluation.NoPositives when the held-out data has no positive example at all."""
    from smartmkt.lifecycle import evaluation

    result = evaluation.evaluate_artifact(settings, engine, meta.kind, target)
    meta.metrics, meta.heldout = result.metrics, result.heldout
    meta.primary_metric = evaluation.PRIMARY_METRIC[meta.kind]
    served = evaluation.served_evaluation(settings, engine, meta.kind, target)
    comparison, incomparable = None, None
    unknown = evaluation.unknown_to(served, result) if served else []
    if unknown:
        served = None
        incomparable = f"the served model does not know {', '.join(unknown)}: nothing comparable served"
    if served is not None:
        try:
            comparison = evaluation.compare(result, served, settings)
        except ValueError:  # not the same held-out examples: the gate cannot decide
            comparison = None
    score = evaluation.primary(served) if served else None
    return model_registry.promote(
        settings.models_dir, target, meta, score, force, comparison, incomparable=incomparable, **info
    )


def _needs_training(target: Path, force: bool) -> bool:
    """False when an artifact from the same inputs is on disk already (trained earlier but not
    promoted, or copied from the model cache): only the gate runs again."""
    return force or not target.exists()


def _build(target: Path, write: Callable[[Path], object]) -> None:
    """``write`` into a staging folder, then rename it into place: an interrupted training never
    leaves a half-written artifact where the gate or the app would read it."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    write(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)


def _lock_lines(settings: Settings) -> list[str]:
    """The bot environment's pinned versions: a Rasa upgrade retrains the dialogue model."""
    lock = settings.bot_dir / "requirements.lock"
    return lock.read_text().splitlines() if lock.exists() else []


# --- NLU ------------------------------------------------------------------------------------
def train_nlu_model(
    settings: Settings,
    engine: Engine,
    force: bool = False,
    progress: Progress = _quiet,
    seed: int | None = None,
) -> TrainResult:
    from smartmkt.nlu.data import load_nlu
    from smartmkt.nlu.train import TrainConfig, train_nlu

    config = TrainConfig() if seed is None else TrainConfig(seed=seed)
    data_dir = settings.bot_dir / "data" / "nlu"
    titles = catalog_titles(engine)
    data_fingerprint = _hash_files([*data_dir.rglob("*.yml")], *titles)
    fingerprint = _hash_files(
        [*data_dir.rglob("*.yml"), *_code_files("nlu"), PACKAGE_DIR / "catalog.py"],
        repr(config),
        *titles,
    )
    target = settings.models_dir / "nlu" / fingerprint
    if not force and _reuse(settings, "nlu", target, fingerprint):
        return TrainResult("nlu", target, fingerprint, skipped=True)
    examples = load_nlu(data_dir)
    reused = not _needs_training(target, force)
    if not reused:
        _build(
            target,
            lambda staging: train_nlu(
                examples,
                staging,
                titles=titles,
                config=config,
                fingerprint=fingerprint,
                progress=lambda step, total, _loss: progress("nlu", step, total),
            ),
        )
    meta = model_registry.ModelMetadata("nlu", fingerprint, data_fingerprint, asdict(config))
    promotion = _gate(settings, engine, target, meta, force, examples=len(examples))
    model_registry.save_to_cache(settings.model_cache_dir, "nlu", target)
    return TrainResult("nlu", target, fingerprint, False, promotion, meta.metrics, reused)


# --- recommender ----------------------------------------------------------------------------
def train_recommender_model(
    settings: Settings,
    engine: Engine,
    force: bool = False,
    progress: Progress = _quiet,
    seed: int | None = None,
) -> TrainResult:
    """Trained on every customer's purchases but their latest 20% (the held-out part); serving
    reads a customer's whole history, so the newest purchases still shape their recommendations."""
    from smartmkt.recommend.collaborative import CollaborativeConfig
    from smartmkt.recommend.evaluate import temporal_split
    from smartmkt.recommend.recommender import CatalogItem, Recommender
    from smartmkt.recommend.sequential import SequenceConfig

    config = CollaborativeConfig() if seed is None else CollaborativeConfig(seed=seed)
    sequence_config = SequenceConfig() if seed is None else SequenceConfig(seed=seed)
    data_fingerprint = store_fingerprint(engine)
    fingerprint = _hash_files(
        _code_files("recommend"),
        data_fingerprint,
        repr(config),
        repr(sequence_config),
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
    train, _heldout = temporal_split(purchase_histories(engine))
    reused = not _needs_training(target, force)
    if not reused:
        model = Recommender.fit(
            items,
            list(train.values()),
            config,
            exact_max_items=settings.faiss_exact_max_items,
            progress=progress,
            fingerprint=fingerprint,
            sequence_config=sequence_config,
        )
        _build(target, model.save)
    params = {
        "collaborative": asdict(config),
        "sequence": asdict(sequence_config),
        "exact_max_items": settings.faiss_exact_max_items,
    }
    meta = model_registry.ModelMetadata("recommender", fingerprint, data_fingerprint, params)
    promotion = _gate(settings, engine, target, meta, force, items=len(items), customers=len(train))
    model_registry.save_to_cache(settings.model_cache_dir, "recommender", target)
    return TrainResult("recommender", target, fingerprint, False, promotion, meta.metrics, reused)


# --- purchase prediction ------------------------------------------------------------------
def train_purchase_model(
    settings: Settings,
    engine: Engine,
    force: bool = False,
    progress: Progress = _quiet,
    seed: int | None = None,
) -> TrainResult:
    """The purchase model on the store's history before its latest H days (the held-out part);
    every customer's scores are then rewritten by the served model, whichever it is (a reused
    model still scores the store as it is now)."""
    from smartmkt.predict import scoring
    from smartmkt.predict.history import purchase_days

    horizon, seed = settings.purchase_horizon_days, PURCHASE_SEED if seed is None else seed
    data_fingerprint = store_fingerprint(engine)
    fingerprint = _hash_files(_code_files("predict"), data_fingerprint, f"horizon={horizon}", f"seed={seed}")
    target = settings.models_dir / "purchase" / fingerprint
    skipped = not force and _reuse(settings, "purchase", target, fingerprint)
    days = purchase_days(engine)
    progress("purchase model", 0, 3)
    promotion, metrics, reused = None, {}, not _needs_training(target, force)
    if not skipped:
        split = scoring.holdout_split(days, horizon)
        if not reused:
            model = scoring.fit_until(days, split.train_until, seed=seed)
            _build(target, lambda staging: scoring.save(model, staging))
        progress("purchase model", 1, 3)
        params = {
            "epochs": scoring.EPOCHS,
            "seed": seed,
            "horizon_days": horizon,
            "train_until": f"{split.train_until:%Y-%m-%d}",
        }
        meta = model_registry.ModelMetadata("purchase", fingerprint, data_fingerprint, params)
        promotion = _gate(settings, engine, target, meta, force, horizon_days=horizon)
        metrics = meta.metrics
        model_registry.save_to_cache(settings.model_cache_dir, "purchase", target)
    progress("purchase model", 2, 3)
    served = model_registry.served(settings.models_dir, "purchase")
    if served is None:
        raise FileNotFoundError(f"no purchase model is served in {settings.models_dir}")
    scoring.write_scores(
        engine, scoring.load(settings.models_dir / served["path"]), days, horizon, served["fingerprint"]
    )
    progress("purchase model", 3, 3)
    return TrainResult("purchase", target, fingerprint, skipped, promotion, metrics, reused)


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
    if not force and _reuse(settings, "rasa_core", target, fingerprint, gated=False):
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
    # no held-out figure decides here: the story tests (`smartmkt bot test-stories`) judge dialogue
    meta = model_registry.ModelMetadata("rasa_core", fingerprint, fingerprint, {"rasa": "train core"})
    model_registry.promote(settings.models_dir, target, meta, served_score=None)
    model_registry.save_to_cache(settings.model_cache_dir, "rasa_core", target)
    progress("core", 1, 1)
    return TrainResult("rasa_core", target, fingerprint, skipped=False)
