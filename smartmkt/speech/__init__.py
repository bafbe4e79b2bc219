"""Speech input: audio decoding, Whisper (two engines, one set of weights), the converter."""
