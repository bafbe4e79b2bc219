"""RecBole's models as peers of ``smartmkt bench recommend``: run in RecBole's own environment.

``python -m smartmkt.bench.recbole_runner JOB.json OUT.json`` in ``.venv-recbole`` (RecBole 1.2.1,
numpy < 2: its quick start imports Ray 2.6). It imports nothing of smartmkt but
``smartmkt.recommend.evaluate`` (numpy only), so the peers choose their configuration by the same
function (``mean_ndcg``) as smartmkt does. smartmkt.bench.recbole_peers writes the job and reads the answer.

What it does with a job (the histories are the bench's, product ids as tokens, oldest first);
one job is one configuration, so a long bench stopped half-way loses at most one:

1. ``tune``: RecBole's model and RecBole's trainer learn one configuration of the grid (RecBole
   parameters over its defaults) from the ``tune`` histories written as RecBole atomic files
   (``_atomic_files``); after every epoch the model ranks the whole catalog for each validation
   customer, what they bought before excluded, and ndcg@10 of the held-out validation purchases
   is measured. Training stops after ``patience`` epochs without a better figure or at
   ``max_epochs``; the model is kept as it was at its best epoch. When the protocol keeps the
   tuned model (RecBole's leave-one-out: trained without the validation purchase, which then
   joins the history the test query reads), it also ranks for the test customers.
2. ``final``: the chosen configuration learns from the ``final`` histories (the temporal
   protocol: the whole training period) for as many epochs as it chose, and ranks for each test
   customer; the top ``k`` go back.
3. ``official``: RecBole's own ``run_recbole`` (the cross-check).

Sequential models (SASRec, GRU4Rec, BERT4Rec) read RecBole "benchmark files" whose rows are
what RecBole's own data augmentation makes of a history (every prefix, at most
``MAX_ITEM_LIST_LENGTH`` long, and the purchase after it); general models (BPR, LightGCN) read the
purchases themselves.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.interaction import Interaction
from recbole.utils import get_model, get_trainer, init_seed

from smartmkt.recommend.evaluate import mean_ndcg

SEQUENTIAL = {"SASRec", "GRU4Rec", "BERT4Rec"}
SCORE_BATCH = 256
LATENCY_SAMPLE = 200


def _atomic_files(
    folder: Path, name: str, sequential: bool, train: dict[str, list[str]], max_len: int
) -> None:
    """``name.{train,valid,test}.inter`` from ``train`` histories. RecBole insists on the three
    files; valid and test hold a few training rows (the runner never asks RecBole to evaluate)."""
    data = folder / name
    data.mkdir(parents=True, exist_ok=True)
    if sequential:
        header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
        rows = [
            f"{user}\t{' '.join(items[max(0, i - max_len) : i])}\t{items[i]}\n"
            for user, items in train.items()
            for i in range(1, len(items))
        ]
    else:
        header = "user_id:token\titem_id:token\ttimestamp:float\n"
        rows = [f"{user}\t{item}\t{i}\n" for user, items in train.items() for i, item in enumerate(items)]
    for part, lines in (("train", rows), ("valid", rows[:8]), ("test", rows[:8])):
        (data / f"{name}.{part}.inter").write_text(header + "".join(lines))


def _config(model: str, folder: Path, overrides: dict[str, Any], seed: int, max_len: int) -> Config:
    base: dict[str, Any] = {
        "data_path": str(folder),
        "benchmark_filename": ["train", "valid", "test"],
        "checkpoint_dir": str(folder / "saved"),
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "seed": seed,
        "reproducibility": True,
        "MAX_ITEM_LIST_LENGTH": max_len,
        "eval_args": {"split": None, "order": "TO", "group_by": "user", "mode": "full"},
    }
    if model in SEQUENTIAL:
        base["load_col"] = {"inter": ["user_id", "item_id_list", "item_id"]}
        base["alias_of_item_id"] = ["item_id_list"]  # one id space for the history and the target
    else:
        base["load_col"] = {"inter": ["user_id", "item_id", "timestamp"]}
    if model in SEQUENTIAL and overrides.get("loss_type", "CE") == "CE":
        base["train_neg_sample_args"] = None
    return Config(model=model, dataset="bench", config_dict={**base, **overrides})


class Peer:
    """One RecBole model trained on one set of histories, ranking for customers."""

    def __init__(
        self,
        model: str,
        folder: Path,
        overrides: dict[str, Any],
        train: dict[str, list[str]],
        seed: int,
        max_len: int,
    ):
        self.name, self.sequential, self.max_len = model, model in SEQUENTIAL, max_len
        _atomic_files(folder, "bench", self.sequential, train, max_len)
        self.config = _config(model, folder, overrides, seed, max_len)
        init_seed(self.config["seed"], self.config["reproducibility"])
        dataset = create_dataset(self.config)
        self.train_data, _valid, _test = data_preparation(self.config, dataset)
        self.dataset = self.train_data.dataset
        init_seed(self.config["seed"] + self.config["local_rank"], self.config["reproducibility"])
        self.model = get_model(self.config["model"])(self.config, self.dataset).to("cpu")
        self.trainer = get_trainer(self.config["MODEL_TYPE"], self.config["model"])(self.config, self.model)
        self.item_tokens = list(self.dataset.field2id_token["item_id"])  # index 0: padding
        self.item_ids = {token: i for i, token in enumerate(self.item_tokens) if i}

    def train_epoch(self, epoch: int) -> None:
        self.trainer._train_epoch(self.train_data, epoch)

    def _query(self, users: list[str], histories: dict[str, list[str]]) -> Interaction:
        if not self.sequential:
            ids = self.dataset.token2id("user_id", users)
            return Interaction({"user_id": torch.as_tensor(np.atleast_1d(ids), dtype=torch.long)})
        seqs = np.zeros((len(users), self.max_len), dtype=np.int64)
        lengths = np.ones(len(users), dtype=np.int64)
        for row, user in enumerate(users):
            known = [self.item_ids[t] for t in histories[user] if t in self.item_ids][-self.max_len :]
            seqs[row, : len(known)] = known
            lengths[row] = max(1, len(known))
        return Interaction({"item_id_list": torch.from_numpy(seqs), "item_length": torch.from_numpy(lengths)})

    @torch.no_grad()
    def top(
        self, users: list[str], histories: dict[str, list[str]], k: int, exclude_history: bool = True
    ) -> dict[str, list[str]]:
        """Each customer's ``k`` best items, what their history holds excluded (RecBole's own
        full ranking of a sequential model excludes nothing: ``exclude_history=False``)."""
        self.model.eval()
        out: dict[str, list[str]] = {}
        for start in range(0, len(users), SCORE_BATCH):
            batch = users[start : start + SCORE_BATCH]
            scores = self.model.full_sort_predict(self._query(batch, histories)).view(len(batch), -1)
            scores[:, 0] = -torch.inf
            for row, user in enumerate(batch):
                seen = [self.item_ids[t] for t in histories[user] if t in self.item_ids]
                if exclude_history:
                    scores[row, seen] = -torch.inf
            best = torch.topk(scores, k, dim=1).indices.numpy()
            for row, user in enumerate(batch):
                out[user] = [self.item_tokens[i] for i in best[row]]
        return out

    def latency_ms(self, users: list[str], histories: dict[str, list[str]], k: int) -> float:
        """Median time to rank the catalog for one customer, alone (as a chat request would)."""
        times = []
        for user in users[:LATENCY_SAMPLE]:
            started = time.perf_counter()
            self.top([user], histories, k)
            times.append((time.perf_counter() - started) * 1000)
        return round(statistics.median(times), 2) if times else 0.0


def _train_watched(
    peer: Peer, tune: dict[str, Any], max_epochs: int, patience: int, k: int
) -> tuple[float, int, list[float]]:
    """Train epoch by epoch, measuring validation ndcg@k after each; stop after ``patience``
    epochs without a better one. Returns the best figure, its epoch count and the curve."""
    heldout, users = tune["heldout"], sorted(tune["heldout"])
    best, best_epochs, curve, weights = -1.0, 0, [], None
    for epoch in range(max_epochs):
        peer.train_epoch(epoch)
        figure = mean_ndcg(peer.top(users, tune["train"], k), heldout, k)
        curve.append(round(figure, 4))
        print(f"{peer.name} epoch {epoch + 1}: valid ndcg@{k} {figure:.4f}", file=sys.stderr, flush=True)
        if figure > best:
            best, best_epochs, weights = figure, epoch + 1, copy.deepcopy(peer.model.state_dict())
        elif epoch + 1 - best_epochs >= patience:
            break
    if weights is not None:
        peer.model.load_state_dict(weights)  # the model as it was at its best epoch
    return best, best_epochs, curve


def _ranked(peer: Peer, job: dict[str, Any]) -> dict[str, Any]:
    """The test customers' top ``k`` from ``peer`` (and unmasked, when asked), and its latency."""
    query, users, k = job["final"]["query"], job["final"]["users"], job["k"]
    started = time.perf_counter()
    top = peer.top(users, query, k)
    unmasked = peer.top(users, query, k, exclude_history=False) if job.get("unmasked") else None
    return {
        "top": top,
        "top_unmasked": unmasked,
        "rank_seconds": round(time.perf_counter() - started, 1),
        "latency_ms": peer.latency_ms(users, query, k),
    }


def tune(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """One configuration of the grid, trained on the tuning histories and watched on the
    validation purchases. With ``final`` in the job (a protocol that keeps the tuned model), the
    model at its best epoch also ranks for the test customers."""
    model, overrides, k = job["model"], job["config"], job["k"]
    started = time.perf_counter()
    peer = Peer(model, workdir / "tune", overrides, job["tune"]["train"], job["seed"], job["max_len"])
    score, epochs, curve = _train_watched(peer, job["tune"], job["max_epochs"], job["patience"], k)
    tried = {
        "config": overrides,
        "valid_ndcg@10": round(score, 4),
        "epochs": epochs,
        "curve": curve,
        # the epoch cap ended training while it was still improving: a larger budget might
        # have done better (reported, so a capped peer is not read as a weak one)
        "stopped_at_cap": epochs == job["max_epochs"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    return {"tried": tried, **(_ranked(peer, job) if "final" in job else {})}


def final(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The chosen configuration, trained on the protocol's training histories for the number of
    epochs it chose, ranking for the test customers."""
    started = time.perf_counter()
    peer = Peer(
        job["model"], workdir / "final", job["config"], job["final"]["fit"], job["seed"], job["max_len"]
    )
    for epoch in range(job["epochs"]):
        peer.train_epoch(epoch)
    return {"train_seconds": round(time.perf_counter() - started, 1), **_ranked(peer, job)}


def official(job: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """RecBole's own ``run_recbole`` on the ML-100k its wheel ships, leave-one-out by time, full
    ranking: RecBole's data pipeline, trainer, early stopping and evaluation, untouched. The
    bench sets its SASRec beside this to show the wrapper does not weaken the peer."""
    import recbole
    from recbole.quick_start import run_recbole

    started = time.perf_counter()
    result = run_recbole(
        model=job["model"],
        dataset="ml-100k",
        config_dict={
            **job["config"],
            "data_path": str(Path(recbole.__file__).parent / "dataset_example"),
            "checkpoint_dir": str(workdir / "saved"),
            "device": "cpu",
            "use_gpu": False,
            "show_progress": False,
            "seed": job["seed"],
            "epochs": job["max_epochs"],
            "stopping_step": job["patience"],
            "eval_step": 1,
            "train_neg_sample_args": None,
            "eval_args": {
                "split": {"LS": "valid_and_test"},
                "order": "TO",
                "group_by": "user",
                "mode": "full",
            },
            "metrics": ["Recall", "NDCG"],
            "topk": [10],
            "valid_metric": "NDCG@10",
        },
    )
    return {
        "valid": {k: round(float(v), 4) for k, v in result["best_valid_result"].items()},
        "test": {k: round(float(v), 4) for k, v in result["test_result"].items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    job_path, out_path = Path(sys.argv[1]), Path(sys.argv[2])
    logging.disable(logging.WARNING)
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    job = json.loads(job_path.read_text())
    workdir = job_path.parent / job["model"]
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)  # RecBole's trainer writes a log_tensorboard folder in the working directory
    kinds = {"tune": tune, "final": final, "official": official}
    answer = kinds[job["kind"]](job, workdir)
    out_path.write_text(json.dumps(answer))


if __name__ == "__main__":
    main()
