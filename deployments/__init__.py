"""Model specs (``<model>.toml``) and, later, how flows are deployed for real."""
