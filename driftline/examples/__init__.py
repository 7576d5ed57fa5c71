"""Data generators for the example models shipped in ``deployments/``."""
