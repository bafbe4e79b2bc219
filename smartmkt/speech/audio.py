"""Audio in: whatever a browser or a phone sends, decoded to 16 kHz mono float32 with PyAV.

wav, flac, mp3, ogg/opus, webm/opus (MediaRecorder's default), m4a/aac and anything else FFmpeg
reads. The limits come from settings (60 s, 10 MB by default) and are checked before Whisper sees
anything: size before decoding, duration while decoding, so an oversized upload costs little.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class AudioError(ValueError):
    """Audio the channel cannot take; ``kind`` is "too_large", "too_long", "empty" or "not_audio"."""

    kind: str
    message: str

    def __str__(self) -> str:
        return self.message


def decode(data: bytes, max_seconds: float = 60.0, max_bytes: int = 10 * 1024 * 1024) -> np.ndarray:
    """Samples in [-1, 1] at 16 kHz, mono; AudioError for anything the channel refuses."""
    import av

    if not data:
        raise AudioError("empty", "the upload is empty")
    if len(data) > max_bytes:
        raise AudioError(
            "too_large", f"the audio is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB"
        )
    limit = int(max_seconds * SAMPLE_RATE)
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks, total = [], 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError("not_audio", "the upload has no audio stream")
            for frame in container.decode(container.streams.audio[0]):
                frame.pts = None  # odd container timestamps must not upset the resampler
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].size
                if total > limit:
                    raise AudioError("too_long", f"the audio is longer than the limit of {max_seconds:g} s")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError) as exc:
        raise AudioError("not_audio", f"the upload is not audio this channel can read ({exc})") from exc
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise AudioError("empty", "the upload holds no audio samples")
    if samples.size > limit:
        raise AudioError("too_long", f"the audio is longer than the limit of {max_seconds:g} s")
    # Float formats carry any value (a damaged float WAV decoded to 3.45, and NaN is a valid
    # float32), and resampling overshoots near full scale: Whisper gets finite samples in [-1, 1].
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0, out=samples)
