"""The marketer console, framework-free: users and sessions, the conversation index over Rasa's
tracker store, conversation lists and transcripts, the dashboard, NLU review and its export.
The JSON API over it is smartmkt/web/routers/console_*.py (docs/console-api.md)."""
