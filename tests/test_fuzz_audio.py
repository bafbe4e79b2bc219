"""Fuzzing the voice channel's audio decoder (smartmkt.speech.audio.decode) with hypothesis.

Whatever bytes an upload holds, ``decode`` returns 16 kHz mono float32 samples that Whisper can
take (finite, in [-1, 1], within the duration limit), or raises ``AudioError``; never another
exception. Inputs: arbitrary bytes, and real recordings in every upload format (made here by
ffmpeg from a generated tone) truncated, with bytes overwritten, with their header joined to
another format's body, or with junk put in.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartmkt.speech.audio import SAMPLE_RATE, AudioError, decode

FORMATS = {  # container/codec as browsers, phones and files send them
    "wav": ["-c:a", "pcm_s16le"],
    "wav_float": ["-c:a", "pcm_f32le", "-f", "wav"],
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame"],
    "ogg": ["-c:a", "libopus"],
    "webm": ["-c:a", "libopus"],
    "m4a": ["-c:a", "aac"],
}
MAX_SECONDS = 2.0
FUZZ = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def _record(folder: Path, name: str, codec: list[str]) -> bytes:
    path = folder / f"tone-{name}.{name.split('_')[0]}"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.4", "-ar", "24000", "-ac", "1"]
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *tone, *codec, str(path)], check=True)
    return path.read_bytes()


RECORDINGS: dict[str, bytes] = {}


@pytest.fixture(scope="module", autouse=True)
def recordings(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("fuzz-audio")
    RECORDINGS.update({name: _record(folder, name, codec) for name, codec in FORMATS.items()})


def check(data: bytes) -> None:
    try:
        samples = decode(data, max_seconds=MAX_SECONDS, max_bytes=256 * 1024)
    except AudioError as exc:
        assert exc.kind in ("too_large", "too_long", "empty", "not_audio")
        return
    assert samples.dtype == np.float32 and samples.ndim == 1 and 0 < samples.size <= MAX_SECONDS * SAMPLE_RATE
    assert np.isfinite(samples).all() and float(np.abs(samples).max()) <= 1.0


def test_the_real_recordings_decode() -> None:
    for name, data in RECORDINGS.items():
        samples = decode(data)
        assert abs(samples.size / SAMPLE_RATE - 0.4) < 0.1, name


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.sampled_from(sorted(FORMATS)), st.data())
def test_truncated_recordings(name: str, data: st.DataObject) -> None:
    real = RECORDINGS[name]
    check(real[: data.draw(st.integers(0, len(real)))])


@FUZZ
@given(
    st.sampled_from(sorted(FORMATS)),
    st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=24),
    st.booleans(),
)
def test_garbled_recordings(name: str, edits: list[tuple[int, int]], header_only: bool) -> None:
    """Bytes overwritten anywhere, or only in the first 64 (the container and codec headers)."""
    data = bytearray(RECORDINGS[name])
    span = min(64, len(data)) if header_only else len(data)
    for position, value in edits:
        data[position % span] = value
    check(bytes(data))


@FUZZ
@given(
    st.sampled_from(sorted(FORMATS)),
    st.sampled_from(sorted(FORMATS)),
    st.integers(4, 512),
    st.binary(max_size=256),
    st.integers(0, 2**31),
)
def test_spliced_recordings(head: str, body: str, cut: int, junk: bytes, where: int) -> None:
    """One format's header on another's body, with junk put in somewhere."""
    data = RECORDINGS[head][:cut] + RECORDINGS[body][cut:]
    at = where % (len(data) + 1)
    check(data[:at] + junk + data[at:])


def test_a_float_wav_holding_nan_inf_and_loud_values_comes_out_finite_and_in_range() -> None:
    """Found by the fuzzing above: a float WAV decoded to NaN, inf and 5.0, all passed to Whisper."""
    import struct

    body = np.array([0.5, np.nan, np.inf, -np.inf, 5.0] * 2000, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)  # IEEE float, mono, 16 kHz, 32 bits
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(body)) + body
    samples = decode(b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks)
    assert samples.size == 10_000 and np.isfinite(samples).all()
    assert samples.min() == -1.0 and samples.max() == 1.0 and samples[0] == 0.5
