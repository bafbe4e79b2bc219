"""RecBole 1.2.1's models as peers of ``smartmkt bench recommend``, each tuned like smartmkt.

RecBole runs in its own environment (``.venv-recbole``, made by ``make setup`` from
tools/recbole/requirements.txt): its quick start imports Ray 2.6, which needs numpy < 2, and the
app's environment has numpy 2. This module writes a job for smartmkt.bench.recbole_runner, runs it
there in a subprocess and reads back each test customer's top 10, which the bench scores with the
same function as smartmkt's.

Tuning fairness: every model, smartmkt included, gets the same budget
(smartmkt.bench.protocols.Budget): as many configurations (``GRIDS`` here), chosen by ndcg@10 on
a validation split carved from the training period (``Protocol``), never on the test
purchases. RecBole's models also choose their number of epochs there (at most ``max_epochs``,
stopping after ``patience`` epochs without progress).
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from smartmkt.bench.protocols import Budget, Protocol
from smartmkt.settings import get_settings

# RecBole's models and, for each, a grid over RecBole's own defaults (its properties/model/*.yaml:
# hidden size 64, two layers, lr 0.001...). The same size for every model, smartmkt's included.
GRIDS: dict[str, list[dict[str, Any]]] = {  # the cheapest first
    "BPR": [
        {"learning_rate": lr, "embedding_size": d, "train_batch_size": 2048}
        for lr in (1e-3, 5e-3)
        for d in (64, 128)
    ],
    "LightGCN": [
        {"learning_rate": lr, "n_layers": n, "train_batch_size": 2048} for lr in (1e-3, 5e-3) for n in (2, 3)
    ],
    "GRU4Rec": [
        {"learning_rate": lr, "dropout_prob": d, "train_batch_size": 512}
        for lr in (1e-3, 3e-3)
        for d in (0.1, 0.3)
    ],
    "SASRec": [
        {"learning_rate": lr, "hidden_dropout_prob": d, "attn_dropout_prob": d, "train_batch_size": 512}
        for lr in (1e-3, 3e-3)
        for d in (0.2, 0.5)
    ],
    "BERT4Rec": [
        {"learning_rate": lr, "mask_ratio": m, "train_batch_size": 512}
        for lr in (1e-3, 3e-3)
        for m in (0.2, 0.4)
    ],
}
# The bench's keys, as the issue names them.
KEYS = {
    "SASRec": "sasrec",
    "GRU4Rec": "gru4rec",
    "BERT4Rec": "bert4rec",
    "LightGCN": "lightgcn",
    "BPR": "bpr",
}


class RecBoleMissing(RuntimeError):
    """RecBole's environment is not there (``make setup`` makes it)."""


def _tokens(histories: dict[int, list[int]]) -> dict[str, list[str]]:
    return {str(c): [str(p) for p in items] for c, items in histories.items()}


def recbole_python() -> Path:
    python = get_settings().project_root / ".venv-recbole" / "bin" / "python"
    if not python.exists():
        raise RecBoleMissing(f"RecBole's environment is missing ({python}): run `make setup`")
    return python


SEED = 2020  # RecBole's own default seed
MAX_LEN = 50  # RecBole's default MAX_ITEM_LIST_LENGTH


def run_peer(
    model: str,
    protocol: Protocol,
    budget: Budget,
    progress: Callable[[str], None] | None = None,
    unmasked: bool = False,
    reuse: bool = True,
    grid: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Tune, train and rank with one RecBole model; the runner's answers with product ids again.
    ``unmasked`` also ranks without excluding the history (RecBole's own way for sequence models);
    ``reuse`` takes an earlier run's answer to the same job when there is one; ``grid`` replaces
    the model's own (a configuration chosen on another protocol). Each configuration is a job of
    its own, and so is the final training: a run stopped half-way loses at most one."""
    say = progress or (lambda _m: None)
    grid = grid or GRIDS[model][: budget.configs]
    common = {
        "model": model,
        "k": 10,
        "seed": SEED,
        "max_len": MAX_LEN,
        "max_epochs": budget.max_epochs,
        "patience": budget.patience,
        "unmasked": unmasked,
    }
    ranked_for = {"query": _tokens(protocol.query), "users": sorted(str(c) for c in protocol.test)}
    keeps_tuned = protocol.fit is None  # leave-one-out: the tuned model ranks for the test
    tuning = {"train": _tokens(protocol.tune_train), "heldout": _tokens(protocol.tune_heldout)}
    tuned = []
    for number, config in enumerate(grid):
        job = {**common, "kind": "tune", "config": config, "tune": tuning}
        answer = _cached_answer(job | ({"final": ranked_for} if keeps_tuned else {}), say, reuse)
        tried = answer["tried"]
        say(f"{model} {number + 1}/{len(grid)} {config}: valid ndcg@10 {tried['valid_ndcg@10']:.4f}")
        tuned.append(answer)
    best = max(range(len(tuned)), key=lambda i: tuned[i]["tried"]["valid_ndcg@10"])  # the first on ties
    choice = tuned[best]["tried"]
    if keeps_tuned:
        final, train_seconds = tuned[best], choice["seconds"]
    else:
        say(f"{model}: the chosen configuration on the whole training period")
        job = {
            **common,
            "kind": "final",
            "config": choice["config"],
            "epochs": choice["epochs"],
            "final": {"fit": _tokens(protocol.fit or {}), **ranked_for},
        }
        final = _cached_answer(job, say, reuse)
        train_seconds = final["train_seconds"]
    answer = {
        "model": model,
        "chosen": choice["config"],
        "chosen_epochs": choice["epochs"],
        "tried": [t["tried"] for t in tuned],
        "train_seconds": train_seconds,
        "rank_seconds": final["rank_seconds"],
        "latency_ms": final["latency_ms"],
        "top": final["top"],
        "top_unmasked": final.get("top_unmasked"),
        "cached": all(t["cached"] for t in tuned) and final["cached"],
    }
    for key in ("top", "top_unmasked"):
        if answer.get(key) is not None:
            answer[key] = {int(c): [int(p) for p in top] for c, top in answer[key].items()}
    return answer


def _cached_answer(job: dict[str, Any], say: Callable[[str], None], reuse: bool = True) -> dict[str, Any]:
    """The runner's answer to ``job``, kept in var/cache/bench/recbole under a hash of the job (data,
    grid, budget) and of the runner's and RecBole's code: a long bench stopped half-way takes up
    where it stopped, and a changed input runs again. Reused answers say so (``cached``)."""
    root = get_settings().project_root
    runner = (root / "smartmkt" / "bench" / "recbole_runner.py").read_bytes()
    lock = (root / "tools" / "recbole" / "requirements.lock").read_bytes()
    digest = hashlib.sha256(json.dumps(job, sort_keys=True).encode() + runner + lock).hexdigest()[:24]
    name = f"{job['model']}-{job['kind']}-{digest}.json"
    cached = get_settings().var_dir / "cache" / "bench" / "recbole" / name
    if reuse and cached.exists():
        say(f"{job['model']}: the answer of an earlier run of the same job and code ({cached.name})")
        return {**json.loads(cached.read_text()), "cached": True}
    with tempfile.TemporaryDirectory(prefix=f"recbole-{job['model']}-") as folder:
        job_path, out_path = Path(folder) / "job.json", Path(folder) / "out.json"
        job_path.write_text(json.dumps(job))
        _run_runner(job_path, out_path, say)
        answer: dict[str, Any] = json.loads(out_path.read_text())
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    partial.write_text(json.dumps(answer))
    partial.replace(cached)  # whole or not at all
    return {**answer, "cached": False}


def official_sasrec(
    chosen: dict[str, Any],
    budget: Budget,
    bench_figures: dict[str, float],
    standard_error: float,
    reuse: bool = True,
) -> dict[str, Any]:
    """RecBole's ``run_recbole`` for SASRec with the configuration the bench chose, on the same
    epoch budget, beside the bench's SASRec ranked RecBole's way (nothing excluded), whose ndcg@10
    has ``standard_error`` over its customers."""
    job = {
        "kind": "official",
        "seed": SEED,
        "model": "SASRec",
        "config": chosen,
        "max_epochs": budget.max_epochs,
        "patience": budget.patience,
    }
    answer = _cached_answer(job, lambda _m: None, reuse)
    return {
        "config": chosen,
        "run_recbole_test": answer["test"],
        "run_recbole_valid": answer["valid"],
        "run_recbole_seconds": answer["seconds"],
        "cached": answer["cached"],
        "bench_sasrec_unmasked": bench_figures,
        **cross_check_verdict(bench_figures["ndcg@10"], answer["test"]["ndcg@10"], standard_error),
    }


def cross_check_verdict(ours: float, official: float, standard_error: float) -> dict[str, Any]:
    """Whether the bench's SASRec and run_recbole's differ by more than the noise of ranking the
    same customers twice: two independent trainings, each figure a mean over the same customers
    with (about) the bench's ``standard_error``, so their difference has a standard error of
    sqrt(2) times it; within noise = inside 1.96 of those (95%)."""
    band = 1.96 * math.sqrt(2) * standard_error
    return {
        "ndcg_ratio_bench_to_run_recbole": round(ours / official, 3) if official else None,
        "ndcg_difference": round(ours - official, 4),
        "noise_band_95": round(band, 4),
        "within_noise": abs(ours - official) <= band,
    }


def _run_runner(job_path: Path, out_path: Path, say: Callable[[str], None]) -> None:
    command = [str(recbole_python()), "-m", "smartmkt.bench.recbole_runner", str(job_path), str(out_path)]
    root = get_settings().project_root
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    with subprocess.Popen(command, cwd=root, env=env, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        tail: list[str] = []
        for line in process.stderr:
            tail = [*tail[-20:], line.rstrip()]
            if line.startswith(tuple(GRIDS)):  # the runner's progress: "<model> epoch n: ..."
                say(line.strip())
    if process.returncode != 0:
        raise RuntimeError(f"RecBole's runner failed ({process.returncode}):\n" + "\n".join(tail))
