"""driftline's reusable Prefect tasks, one module per concern. Import what a flow uses from its module."""
