"""Fine-tune MiniLM for joint intent classification and entity tagging on Rasa NLU data."""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from smartmkt.nlu.augment import augment
from smartmkt.nlu.data import Example
from smartmkt.nlu.encoding import IGNORE, encode_texts, span_families, tag_targets
from smartmkt.nlu.model import JointIntentEntityModel, NLUModelConfig, tag_families

log = logging.getLogger(__name__)
POOL_BATCHES = 16


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    encoder_lr: float = 1e-4
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    label_smoothing: float = 0.1
    max_length: int = 64
    augment_copies: int = 2
    seed: int = 42


def data_fingerprint(files: Sequence[Path], config: TrainConfig, extra: str = "") -> str:
    """Changes whenever the training files, the training config or ``extra`` change."""
    digest = hashlib.sha256(repr(config).encode() + extra.encode())
    for path in sorted(files):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def train_nlu(
    examples: Sequence[Example],
    output: Path,
    titles: Sequence[str] = (),
    config: TrainConfig | None = None,
    fingerprint: str = "",
    progress: Callable[[int, int, float], None] | None = None,
) -> JointIntentEntityModel:
    """Train on ``examples`` (plus catalog-title augmentation) and save to ``output``."""
    import torch
    from transformers import AutoTokenizer, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the base checkpoint's unused pooler is expected

    from smartmkt.recommend.text_encoder import minilm_path

    cfg = config or TrainConfig()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

    data = augment(examples, titles, copies=cfg.augment_copies, seed=cfg.seed)
    intents = sorted({ex.intent for ex in examples})
    tags = tag_families(span_families(examples))
    model_config = NLUModelConfig(intents, tags, cfg.max_length, fingerprint=fingerprint)
    base = minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    encoder = BertModel.from_pretrained(base, add_pooling_layer=False)
    model = JointIntentEntityModel(encoder, encoder.config.hidden_size, model_config)
    # The word-embedding table is half the parameters; freezing it halves a training step on
    # CPU and keeps typo/rare-word knowledge from pre-training intact.
    model.encoder.embeddings.requires_grad_(False)

    intent_index = {name: i for i, name in enumerate(intents)}
    tag_index = {name: i for i, name in enumerate(tags)}
    pool = cfg.batch_size * POOL_BATCHES
    steps_per_epoch = sum(-(-min(pool, len(data) - s) // cfg.batch_size) for s in range(0, len(data), pool))
    total_steps = steps_per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": cfg.encoder_lr},
            {"params": [*model.intent_head.parameters(), *model.tag_head.parameters()], "lr": cfg.head_lr},
        ],
        weight_decay=cfg.weight_decay,
    )
    warmup = max(1, total_steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total_steps - step) / total_steps),
    )
    intent_loss = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    tag_loss = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)

    model.train()
    step = 0
    lengths = [len(ex.text) for ex in data]
    for epoch in range(cfg.epochs):
        batches = _length_bucketed_batches(lengths, cfg.batch_size)
        running = 0.0
        for number, indices in enumerate(batches):
            batch = [data[i] for i in indices]
            enc = encode_texts(tokenizer, [ex.text for ex in batch], cfg.max_length)
            tag_ids = torch.tensor(
                [
                    tag_targets(enc["offset_mapping"][row], enc["attention_mask"][row], ex, tag_index)
                    for row, ex in enumerate(batch)
                ]
            )
            labels = torch.tensor([intent_index[ex.intent] for ex in batch])
            intent_logits, tag_logits = model(enc["input_ids"], enc["attention_mask"])
            loss = intent_loss(intent_logits, labels) + tag_loss(
                tag_logits.reshape(-1, len(tags)), tag_ids.reshape(-1)
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            running += float(loss.detach())
            if progress:
                progress(step, total_steps, running / (number + 1))
        log.info("epoch %d/%d loss %.4f", epoch + 1, cfg.epochs, running / steps_per_epoch)
    model.eval()
    model.save(output, tokenizer)
    return model


def _length_bucketed_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Shuffled batches of similar-length examples: far less padding, same randomness.

    Examples are shuffled, cut into pools of 16 batches, sorted by length inside each pool,
    split into batches, and the batches shuffled again.
    """
    order = list(range(len(lengths)))
    random.shuffle(order)
    pool = batch_size * POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    random.shuffle(batches)
    return batches
