"""The SQL store: typed models, engine/session handling, migrations."""
