"""Data in: the demo store and (later) retailers' own exports."""
