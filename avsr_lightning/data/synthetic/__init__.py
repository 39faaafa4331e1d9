"""data/synthetic."""
