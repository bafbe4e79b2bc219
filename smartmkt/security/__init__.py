"""Security: signed customer tokens and chat sessions bound to them (``identity``), local
secrets generated on first start (``secrets``), HTTP hardening for the app (``http``).

``identity`` uses the standard library only: Rasa's environment imports it too (bot/run_rasa.py).
"""
