"""The smartmkt app (FastAPI): NLU for Rasa, and the HTTP API."""
