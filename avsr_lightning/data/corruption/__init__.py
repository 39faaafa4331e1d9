"""data/corruption."""
