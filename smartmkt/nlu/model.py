"""The joint model: a MiniLM (BERT) encoder with an intent head and a token-tagging head."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

CONFIG_FILE = "smartmkt_nlu.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class NLUModelConfig:
    intents: list[str]
    tags: list[str]  # "O", then "B-<family>", "I-<family>" (family = entity or entity#role)
    max_length: int = 64
    dropout: float = 0.1
    fingerprint: str = ""


class JointIntentEntityModel(nn.Module):
    """Mean-pooled sentence vector -> intent logits; per-token vectors -> BIO tag logits."""

    def __init__(self, encoder: nn.Module, hidden_size: int, config: NLUModelConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        self.intent_head = nn.Linear(hidden_size, len(config.intents))
        self.tag_head = nn.Linear(hidden_size, len(config.tags))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.intent_head(self.dropout(pooled)), self.tag_head(self.dropout(hidden))

    def save(self, folder: Path, tokenizer: object) -> None:
        """Self-contained folder: encoder config, tokenizer files, weights (safetensors), labels."""
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.config.save_pretrained(folder)  # type: ignore[union-attr,operator]
        tokenizer.save_pretrained(folder)  # type: ignore[attr-defined]
        state = {k: v.contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2))

    @classmethod
    def load(cls, folder: Path) -> JointIntentEntityModel:
        from safetensors.torch import load_file
        from transformers import BertConfig, BertModel

        config = NLUModelConfig(**json.loads((folder / CONFIG_FILE).read_text()))
        bert_config = BertConfig.from_pretrained(folder)
        model = cls(BertModel(bert_config, add_pooling_layer=False), bert_config.hidden_size, config)
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        model.eval()
        return model


def tag_families(examples_labels: set[str]) -> list[str]:
    """The tag vocabulary for a set of entity families, in a stable order."""
    tags = ["O"]
    for family in sorted(examples_labels):
        tags += [f"B-{family}", f"I-{family}"]
    return tags
