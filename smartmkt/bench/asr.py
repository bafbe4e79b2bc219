"""``smartmkt bench asr``: Whisper speed and accuracy on generated shopping speech, and the voice
turn end to end.

Utterances: UTTERANCES spoken by espeak-ng (four voices, 140 words a minute), clean; the
default backend is also measured at 175 words a minute (``wer_175_wpm``). Each backend
transcribes every one after the same decoding and VAD (smartmkt.speech):
  rtf   processing time / audio duration, summed over the set (model load excluded)
  wer   word error rate against the script, after openai-whisper's English text normaliser
        (so "$10" and "ten dollars" are the same words)
faster-whisper runs with the configured encoder window (20 s by default) and once more with
Whisper's 30 s window (FULL_WINDOW), the footing openai-whisper always runs on, so the speed-up
from the engine and the one from the window are reported apart.
The voice turn: a ~5 s utterance POSTed to /voice of the running product (scratch store, free
ports) ``turns`` times in a row; the time from upload to the bot's reply, p50/p95.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from smartmkt.settings import Settings
from smartmkt.speech.asr import WHISPER_WINDOW_S, Transcriber, from_settings
from smartmkt.speech.audio import decode
from smartmkt.speech.tts import wav_bytes

UTTERANCES = (
    "can you recommend a comedy under ten dollars",
    "i am looking for a science fiction movie for my son",
    "show me westerns from the nineties",
    "how much is toy story",
    "add star wars to my cart please",
    "do you have any horror films under five dollars",
    "recommend something romantic for tonight",
    "what did i buy last time",
    "i want a thriller but nothing too violent",
    "is fargo on sale",
    "find me a documentary about music",
    "something funny for the whole family",
    "i do not like horror movies",
    "what are your best deals this week",
    "please stop sending me offers",
    "can i get the godfather for less than twelve dollars",
    "show me animated movies for kids",
    "i would like to buy titanic",
    "any good crime dramas from the eighties",
    "recommend a war movie under fifteen dollars",
    "what is the price of jurassic park",
    "delete my data please",
)
VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3")
# The window study hears every utterance in each of these (harder accents included).
STUDY_VOICES = (
    *VOICES,
    "en-gb-scotland",
    "en-029",
    "en-us+f1",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-us+m1",
)
SPEED = 140  # words a minute: an unhurried conversational pace
FAST_SPEED = 175  # espeak-ng's default, faster than most people talk to a shop
FULL_WINDOW = "faster-whisper/tiny.en@30s"  # Whisper's own 30 s window: openai-whisper's footing
TURN = "hello, i am looking for a funny movie for my kids, something under ten dollars please"


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in words, reference words) after normalising both."""
    from whisper.normalizers import EnglishTextNormalizer

    normalise = EnglishTextNormalizer()
    ref, hyp = normalise(reference).split(), normalise(hypothesis).split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


def _backend_figures(transcriber: Transcriber, clips: list[tuple[str, Any]]) -> dict[str, Any]:
    errors = words = 0
    busy = audio = 0.0
    texts = []
    for reference, samples in clips:
        result = transcriber.transcribe(samples)
        wrong, total = word_errors(reference, result.text)
        errors, words, busy, audio = (
            errors + wrong,
            words + total,
            busy + result.seconds,
            audio + result.duration_s,
        )
        texts.append(result.text)
    return {
        "rtf": round(busy / audio, 3),
        "wer": round(errors / words, 4),
        "audio_s": round(audio, 1),
        "texts": texts,
    }


def run_window_study(
    settings: Settings, windows: tuple[int, ...] = (30, 20), progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """WER and rtf of faster-whisper tiny.en per encoder window on every utterance in every
    study voice at two speeds: is the shorter window as accurate as Whisper's 30 s one?"""
    say = progress or (lambda _m: None)
    report: dict[str, Any] = {"voices": len(STUDY_VOICES), "utterances": len(UTTERANCES), "windows": {}}
    for speed in (SPEED, FAST_SPEED):
        say(f"speaking {len(STUDY_VOICES) * len(UTTERANCES)} clips at {speed} words a minute")
        clips = [(u, decode(wav_bytes(u, v, speed))) for v in STUDY_VOICES for u in UTTERANCES]
        for window in windows:
            say(f"{window} s window, {speed} words a minute")
            transcriber = from_settings(settings, "faster-whisper", "tiny.en", window)
            figures = _backend_figures(transcriber, clips)
            figures.pop("texts")
            report["windows"].setdefault(f"{window}s", {})[f"{speed}_wpm"] = figures
    return report


def _voice_turns(settings: Settings, wav: bytes, turns: int) -> list[float]:
    from smartmkt.bench.chat import scratch_stack

    timings = []
    with scratch_stack(settings) as stack:
        url = f"{stack.settings.app_url}/voice"
        httpx.post(
            url, files={"audio": ("t.wav", wav)}, data={"sender": "warmup"}, timeout=120
        )  # load Whisper
        for n in range(turns):
            started = time.perf_counter()
            r = httpx.post(url, files={"audio": ("t.wav", wav)}, data={"sender": f"bench-{n}"}, timeout=120)
            timings.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200 or not r.json()["responses"]:
                raise RuntimeError(f"voice turn failed: {r.status_code} {r.text[:300]}")
    return timings


def run_asr_bench(
    settings: Settings, turns: int = 20, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    say = progress or (lambda _m: None)

    def spoken(speed: int) -> list[tuple[str, Any]]:
        return [(t, decode(wav_bytes(t, VOICES[n % len(VOICES)], speed))) for n, t in enumerate(UTTERANCES)]

    clips = spoken(SPEED)
    turn_wav = wav_bytes(TURN, "en-us", 150)
    report: dict[str, Any] = {"utterances": len(clips), "words_per_minute": SPEED, "backends": {}}
    runs = {
        "faster-whisper/tiny.en": ("faster-whisper", "tiny.en", settings.asr_window_s),
        FULL_WINDOW: ("faster-whisper", "tiny.en", WHISPER_WINDOW_S),
        "faster-whisper/base": ("faster-whisper", "base", settings.asr_window_s),
        "openai-whisper/tiny.en": ("openai-whisper", "tiny.en", WHISPER_WINDOW_S),
    }
    for name, (backend, model, window) in runs.items():
        say(name)
        started = time.perf_counter()
        transcriber = from_settings(settings, backend, model, window)
        load_s = time.perf_counter() - started
        figures = {**_backend_figures(transcriber, clips), "load_s": round(load_s, 2)}
        if backend == "faster-whisper" and model == "tiny.en":
            figures["wer_175_wpm"] = _backend_figures(transcriber, spoken(FAST_SPEED))["wer"]
        report["backends"][name] = {**figures, "window_s": window}
        del transcriber
    say("voice turns through the running product")
    timings = _voice_turns(settings, turn_wav, turns)
    backends = report["backends"]
    fast, full, reference = (
        backends["faster-whisper/tiny.en"],
        backends[FULL_WINDOW],
        backends["openai-whisper/tiny.en"],
    )
    agree = [word_errors(a, b) for a, b in zip(reference["texts"], full["texts"], strict=True)]
    report["faster_vs_openai_tiny_en"] = {
        "speedup": round(reference["rtf"] / fast["rtf"], 2),
        "speedup_same_window": round(reference["rtf"] / full["rtf"], 2),
        "wer_between_same_window": round(sum(e for e, _ in agree) / max(1, sum(n for _, n in agree)), 4),
    }
    report["voice_turn_audio_s"] = round(decode(turn_wav).size / 16000, 2)
    report["voice_turn_p50_ms"] = round(statistics.median(timings))
    report["voice_turn_p95_ms"] = round(sorted(timings)[max(0, round(0.95 * len(timings)) - 1)])
    report["settings"] = {
        "compute_type": settings.asr_compute_type,
        "beam": settings.asr_beam_size,
        "threads": settings.asr_threads,
        "window_s": settings.asr_window_s,
    }
    for figures in backends.values():
        figures.pop("texts")
    return report
