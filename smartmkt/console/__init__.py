"""The marketer console: its users now; conversation review, dashboard and NLU review next."""
