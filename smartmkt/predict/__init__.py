"""Purchase prediction: who buys again within a horizon, how often, and for how much."""
