"""Speech out with espeak-ng (Debian package): spoken replies for the voice channel, and the
generated test and benchmark speech."""

from __future__ import annotations

import subprocess
from pathlib import Path


def wav_bytes(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """``text`` spoken as a WAV file's bytes."""
    return subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout


def wav_file(path: Path, text: str, voice: str = "en-us", speed: int = 160) -> Path:
    path.write_bytes(wav_bytes(text, voice, speed))
    return path
