"""Telling the shop's systems what happened: signed webhooks from the outbox (webhooks.py)."""
