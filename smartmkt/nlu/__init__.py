"""Transformer NLU: MiniLM fine-tuned for joint intent classification and entity tagging."""
