"""Speech to text with Whisper: faster-whisper (CTranslate2, int8 on CPU) by default, or
openai-whisper (the reference implementation) on the very same weights, converted.

Both engines get the same input: the decoded 16 kHz audio with silence cut out by Silero VAD
(shipped inside faster-whisper), so a long pause costs nothing and a silent upload is known to be
silent before any decoding. Decoding options match too: temperature 0, the configured beam, no
timestamps, English for the English-only model and detected otherwise.

The encoder window. Whisper encodes every utterance as 30 s of audio (the rest padded), so a 3 s
chat turn pays for 30 s of encoder work, which is most of its time. faster-whisper can encode a
shorter window (CTranslate2 takes any length up to 30 s); ``window_s`` sets it for utterances with
at least 5 s of room to spare, and longer ones keep the full 30 s. Below 20 s Whisper starts to
mishear and loop ("please stop sending me offers" repeated to the length limit at 10 s of
speech+5 s); at 20 s the word error rate matched the 30 s window on 440 utterances in ten voices
(figures in docs/benchmarks.md). openai-whisper's encoder only takes 30 s, so it always uses that.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from smartmkt.settings import Settings
from smartmkt.speech.audio import SAMPLE_RATE
from smartmkt.speech.weights import ct2_dir, openai_checkpoint

BACKENDS = ("faster-whisper", "openai-whisper")


@dataclass(frozen=True)
class Transcript:
    text: str  # "" when there was no speech
    language: str
    duration_s: float  # the audio as sent
    speech_s: float  # what VAD kept
    seconds: float  # transcription time, VAD included
    backend: str
    model: str

    @property
    def rtf(self) -> float:
        """Real-time factor: processing time / audio duration."""
        return self.seconds / self.duration_s if self.duration_s else 0.0


def speech_only(audio: np.ndarray) -> np.ndarray:
    """The stretches Silero VAD hears speech in, joined (empty when there is none)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=500, speech_pad_ms=200))
    if not spans:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([audio[s["start"] : s["end"]] for s in spans]).astype(np.float32)


class Engine(Protocol):
    def decode(self, speech: np.ndarray) -> tuple[str, str]:
        """(text, language) of speech samples."""
        ...


WHISPER_WINDOW_S = 30  # what Whisper was trained on
WINDOW_MARGIN_S = 5  # room an utterance needs in a shorter window
FRAMES_PER_SECOND = 100  # log-mel frames


def encoder_frames(speech_s: float, window_s: int) -> int:
    """Log-mel frames to encode for ``speech_s`` seconds of speech."""
    window = window_s if speech_s + WINDOW_MARGIN_S <= window_s else WHISPER_WINDOW_S
    return min(window, WHISPER_WINDOW_S) * FRAMES_PER_SECOND


def _windowed_model_class() -> type:
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        """faster-whisper encoding the first ``frames`` of its 30 s input (padding beyond the
        speech) instead of all 3,000."""

        frames = WHISPER_WINDOW_S * FRAMES_PER_SECOND

        def encode(self, features: np.ndarray) -> object:
            return super().encode(features[..., : self.frames])

    return WindowedWhisperModel


class FasterWhisperEngine:
    def __init__(
        self,
        model_dir: Path,
        english_only: bool,
        compute_type: str,
        threads: int,
        beam: int,
        window_s: int = WHISPER_WINDOW_S,
    ) -> None:
        self.model = _windowed_model_class()(
            str(model_dir),
            device="cpu",
            compute_type=compute_type,
            cpu_threads=threads,
            local_files_only=True,
        )
        self.language, self.beam, self.window_s = ("en" if english_only else None), beam, window_s

    def decode(self, speech: np.ndarray) -> tuple[str, str]:
        self.model.frames = encoder_frames(speech.size / SAMPLE_RATE, self.window_s)
        segments, info = self.model.transcribe(
            speech,
            language=self.language,
            beam_size=self.beam,
            temperature=0.0,
            without_timestamps=True,
            vad_filter=False,  # done once, for both engines, in speech_only
            condition_on_previous_text=False,
        )
        return "".join(s.text for s in segments).strip(), info.language


class OpenAIWhisperEngine:
    def __init__(self, checkpoint: Path, english_only: bool, threads: int, beam: int) -> None:
        import torch
        import whisper

        torch.set_num_threads(threads)
        self.model = whisper.load_model(str(checkpoint), device="cpu")
        self.language, self.beam = ("en" if english_only else None), beam

    def decode(self, speech: np.ndarray) -> tuple[str, str]:
        result = self.model.transcribe(
            speech,
            language=self.language,
            beam_size=self.beam if self.beam > 1 else None,
            temperature=0.0,
            without_timestamps=True,
            condition_on_previous_text=False,
            fp16=False,
        )
        return str(result["text"]).strip(), str(result["language"])


class Transcriber:
    """One loaded engine; ``transcribe`` is safe to call from one thread at a time."""

    def __init__(
        self,
        backend: str = "faster-whisper",
        model: str = "tiny.en",
        cache_dir: Path = Path("var/cache/whisper"),
        compute_type: str = "int8",
        threads: int = 2,
        beam: int = 5,
        window_s: int = WHISPER_WINDOW_S,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown ASR backend {backend!r}; choose from {', '.join(BACKENDS)}")
        english_only = model.endswith(".en")
        self.backend, self.model_name = backend, model
        self.engine: Engine
        if backend == "faster-whisper":
            self.engine = FasterWhisperEngine(
                ct2_dir(model, cache_dir), english_only, compute_type, threads, beam, window_s
            )
        else:
            checkpoint = openai_checkpoint(model, cache_dir)
            self.engine = OpenAIWhisperEngine(checkpoint, english_only, threads, beam)

    def transcribe(self, audio: np.ndarray) -> Transcript:
        started = time.perf_counter()
        speech = speech_only(audio)
        text, language = self.engine.decode(speech) if speech.size else ("", "")
        return Transcript(
            text=text,
            language=language,
            duration_s=round(audio.size / SAMPLE_RATE, 3),
            speech_s=round(speech.size / SAMPLE_RATE, 3),
            seconds=round(time.perf_counter() - started, 3),
            backend=self.backend,
            model=self.model_name,
        )


def from_settings(
    settings: Settings, backend: str | None = None, model: str | None = None, window_s: int | None = None
) -> Transcriber:
    """The transcriber the settings describe (``backend``/``model``/``window_s`` override them)."""
    return Transcriber(
        backend or settings.asr_backend,
        model or settings.asr_model,
        settings.var_dir / "cache" / "whisper",
        settings.asr_compute_type,
        settings.asr_threads,
        settings.asr_beam_size,
        window_s or settings.asr_window_s,
    )


class SharedTranscriber:
    """One engine per serving process, loaded on first use, one recording at a time (Whisper
    already uses every core it is given)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._transcriber: Transcriber | None = None
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> Transcript:
        with self._lock:
            if self._transcriber is None:
                self._transcriber = from_settings(self.settings)
            return self._transcriber.transcribe(samples)
