"""Offer policy: who gets which discount on which recommended title, and why."""
